package mlflowtest

import (
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MLflow's input validation, rule for rule, from mlflow/utils/validation.py
// (the constants and _validate_* functions named beside each rule) and the
// request handlers in mlflow/server/handlers.py that call them. Every rule
// answers what MLflow answers: 400 with error_code INVALID_PARAMETER_VALUE
// (MlflowException(..., INVALID_PARAMETER_VALUE); the HTTP status comes from
// ERROR_CODE_TO_HTTP_STATUS in mlflow/exceptions.py, INVALID_PARAMETER_VALUE
// → 400). These are answers, not protocol violations: a real server sends
// them, so the client must handle them; tests assert that loraflow's own
// requests never draw one.

// Limits, validation.py module constants.
const (
	maxParamsTagsPerBatch   = 100       // MAX_PARAMS_TAGS_PER_BATCH
	maxMetricsPerBatch      = 1000      // MAX_METRICS_PER_BATCH
	maxEntitiesPerBatch     = 1000      // MAX_ENTITIES_PER_BATCH
	maxBatchLogRequestSize  = 1_000_000 // MAX_BATCH_LOG_REQUEST_SIZE = int(1e6)
	maxParamValLength       = 6000      // MAX_PARAM_VAL_LENGTH
	maxTagValLength         = 5000      // MAX_TAG_VAL_LENGTH
	maxExperimentNameLength = 500       // MAX_EXPERIMENT_NAME_LENGTH
	maxExperimentTagKey     = 250       // MAX_EXPERIMENT_TAG_KEY_LENGTH
	maxExperimentTagVal     = 5000      // MAX_EXPERIMENT_TAG_VAL_LENGTH
	maxEntityKeyLength      = 250       // MAX_ENTITY_KEY_LENGTH
	maxRegistryTagKey       = 250       // MAX_MODEL_REGISTRY_TAG_KEY_LENGTH
	maxRegistryTagValue     = 5000      // MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH
	maxDatasetNameSize      = 500       // MAX_DATASET_NAME_SIZE
	// MaxDatasetDigestSize is MAX_DATASET_DIGEST_SIZE: a 64-hex sha256 is
	// refused as a dataset digest.
	MaxDatasetDigestSize  = 36
	maxDatasetSchemaSize  = 1048575  // MAX_DATASET_SCHEMA_SIZE
	maxDatasetSourceSize  = 65535    // MAX_DATASET_SOURCE_SIZE
	maxDatasetProfileSize = 16777215 // MAX_DATASET_PROFILE_SIZE
	maxInputTagKeySize    = 255      // MAX_INPUT_TAG_KEY_SIZE
	maxInputTagValueSize  = 500      // MAX_INPUT_TAG_VALUE_SIZE
	maxAliasLength        = 255      // MAX_REGISTERED_MODEL_ALIAS_LENGTH
)

var (
	// _VALID_PARAM_AND_METRIC_NAMES = r"^[/\w.\- ]*$". Python's \w on str
	// is Unicode-aware (letters, digits, underscore), hence \p{L}\p{N}.
	validParamAndMetricNames = regexp.MustCompile(`^[/\p{L}\p{N}_.\- ]*$`)
	// _RUN_ID_REGEX = r"^[a-zA-Z0-9][\w\-]{0,255}$".
	runIDRegex = regexp.MustCompile(`^[a-zA-Z0-9][\p{L}\p{N}_\-]{0,255}$`)
	// _EXPERIMENT_ID_REGEX = r"^[a-zA-Z0-9][\w\-]{0,63}$".
	experimentIDRegex = regexp.MustCompile(`^[a-zA-Z0-9][\p{L}\p{N}_\-]{0,63}$`)
	// _REGISTERED_MODEL_ALIAS_REGEX = r"^[\w\-]*$".
	aliasRegex = regexp.MustCompile(`^[\p{L}\p{N}_\-]*$`)
	// _REGISTERED_MODEL_ALIAS_VERSION_REGEX = r"^[vV]\d+$".
	aliasVersionRegex = regexp.MustCompile(`^[vV][0-9]+$`)
)

// pyLen is Python's len of a str: code points, not bytes.
func pyLen(s string) int { return utf8.RuneCountInString(s) }

// lengthLimit is _validate_length_limit without truncate=True (or with it
// on a server whose MLFLOW_TRUNCATE_LONG_VALUES is false): over the limit is
// INVALID_PARAMETER_VALUE.
func lengthLimit(entity string, limit int, value string) *apiError {
	if n := pyLen(value); n > limit {
		v := value
		if pyLen(v) > 250 {
			v = string([]rune(v)[:250])
		}
		return invalid("%s '%s' had length %d, which exceeded length limit of %d", entity, v, n, limit)
	}
	return nil
}

// truncatable is _validate_length_limit(..., truncate=True), the form
// _validate_param and _validate_tag use for param and run tag values: with
// MLFLOW_TRUNCATE_LONG_VALUES on (environment_variables.py; its default is
// True) a longer value is cut to value[:limit], limit code points, and
// stored so, with a warning; with it off the value is refused as by
// lengthLimit. truncated reports a cut.
func truncatable(entity string, limit int, value *string, on bool) (truncated bool, err *apiError) {
	if value == nil || pyLen(*value) <= limit {
		return false, nil
	}
	if !on {
		return false, lengthLimit(entity, limit, *value)
	}
	*value = string([]rune(*value)[:limit])
	return true, nil
}

// pathNotUnique is path_not_unique: posixpath.normpath(name) must give the
// name back and must not be ".", start with ".." or "/". path.Clean agrees
// with normpath on every name the regex admits except a leading "//", which
// normpath keeps and Clean folds; both start with "/" and are refused.
func pathNotUnique(name string) bool {
	norm := path.Clean(name)
	return norm != name || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/")
}

// entityName is _validate_metric_name, _validate_param_name and
// _validate_tag_name: kind is "metric", "parameter" or "tag".
func entityName(kind string, name *string) *apiError {
	if name == nil {
		return invalid("%s name cannot be None. A key name must be provided.", strings.ToUpper(kind[:1])+kind[1:])
	}
	if !validParamAndMetricNames.MatchString(*name) {
		return invalid("Invalid %s name: '%s'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).", kind, *name)
	}
	if pathNotUnique(*name) {
		return invalid("Invalid %s name: '%s'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", kind, *name, path.Clean(*name))
	}
	return nil
}

// runTag is _validate_tag: tag name rule, key <= MAX_ENTITY_KEY_LENGTH,
// value <= MAX_TAG_VAL_LENGTH (runs/create, runs/log-batch, runs/set-tag).
// Where the store keeps what _validate_tag returns (log_batch's
// _validate_batch_log_data, SqlAlchemyStore.set_tag) the value is
// truncatable instead: runTagTruncating.
func runTag(t tag) *apiError {
	if err := entityName("tag", t.Key); err != nil {
		return err
	}
	if err := lengthLimit("Tag key", maxEntityKeyLength, *t.Key); err != nil {
		return err
	}
	return lengthLimit("Tag value", maxTagValLength, str(t.Value))
}

// experimentTag is _validate_experiment_tag.
func experimentTag(t tag) *apiError {
	if err := entityName("tag", t.Key); err != nil {
		return err
	}
	if err := lengthLimit("Tag key", maxExperimentTagKey, *t.Key); err != nil {
		return err
	}
	return lengthLimit("Tag value", maxExperimentTagVal, str(t.Value))
}

// registeredModelTag is _validate_registered_model_tag.
func registeredModelTag(t tag) *apiError {
	if err := entityName("tag", t.Key); err != nil {
		return err
	}
	if err := lengthLimit("Registered model key", maxRegistryTagKey, *t.Key); err != nil {
		return err
	}
	return lengthLimit("Registered model value", maxRegistryTagValue, str(t.Value))
}

// modelVersionTag is _validate_model_version_tag: as a registered model tag,
// and the value must be present (_validate_tag_value).
func modelVersionTag(t tag) *apiError {
	if err := entityName("tag", t.Key); err != nil {
		return err
	}
	if t.Value == nil {
		return invalid("Tag value cannot be None")
	}
	if err := lengthLimit("Model version key", maxRegistryTagKey, *t.Key); err != nil {
		return err
	}
	return lengthLimit("Model version value", maxRegistryTagValue, *t.Value)
}

// tagsWith applies one tag rule to each tag of a request.
func tagsWith(tags []tag, rule func(tag) *apiError) *apiError {
	for _, t := range tags {
		if err := rule(t); err != nil {
			return err
		}
	}
	return nil
}

// runTagTruncating is runTag with the value truncatable (on: the server's
// MLFLOW_TRUNCATE_LONG_VALUES): a long value is cut in place.
func runTagTruncating(t tag, on bool) (truncated bool, err *apiError) {
	if err := entityName("tag", t.Key); err != nil {
		return false, err
	}
	if err := lengthLimit("Tag key", maxEntityKeyLength, *t.Key); err != nil {
		return false, err
	}
	return truncatable("Tag value", maxTagValLength, t.Value, on)
}

// paramTruncating is _validate_param: its value is truncatable (log_param
// and log_batch store the Param it returns), cut in place when on.
func paramTruncating(p tag, on bool) (truncated bool, err *apiError) {
	if err := entityName("parameter", p.Key); err != nil {
		return false, err
	}
	if err := lengthLimit("Param key", maxEntityKeyLength, *p.Key); err != nil {
		return false, err
	}
	return truncatable("Param value", maxParamValLength, p.Value, on)
}

// param is _validate_param.
func param(p tag) *apiError {
	if err := entityName("parameter", p.Key); err != nil {
		return err
	}
	if err := lengthLimit("Param key", maxEntityKeyLength, *p.Key); err != nil {
		return err
	}
	return lengthLimit("Param value", maxParamValLength, str(p.Value))
}

// metric is _validate_metric: name rule, a numeric value (the JSON decoder
// has already refused a non-number), a nonnegative timestamp, key length.
func metric(m metricMsg) *apiError {
	if err := entityName("metric", m.Key); err != nil {
		return err
	}
	if m.Timestamp != nil && *m.Timestamp < 0 {
		return invalid("Got invalid timestamp %d for metric '%s' (value=%v). Timestamp must be a nonnegative long (64-bit integer) ", *m.Timestamp, *m.Key, m.Value)
	}
	return lengthLimit("Metric name", maxEntityKeyLength, *m.Key)
}

// batchLimits is _validate_batch_log_limits.
func batchLimits(metrics, params, tags int) *apiError {
	for _, c := range []struct {
		name     string
		limit, n int
	}{
		{"metrics", maxMetricsPerBatch, metrics},
		{"params", maxParamsTagsPerBatch, params},
		{"tags", maxParamsTagsPerBatch, tags},
		{"metrics, params, and tags", maxEntitiesPerBatch, metrics + params + tags},
	} {
		if c.n > c.limit {
			return invalid("A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.", c.limit, c.name, c.n, c.name, c.name)
		}
	}
	return nil
}

// paramKeysUnique is _validate_param_keys_unique.
func paramKeysUnique(params []tag) *apiError {
	seen := map[string]bool{}
	var dupes []string
	for _, p := range params {
		if seen[str(p.Key)] {
			dupes = append(dupes, str(p.Key))
		}
		seen[str(p.Key)] = true
	}
	if len(dupes) > 0 {
		return invalid("Duplicate parameter keys have been submitted: %v. Please ensure the request contains only one param value per param key.", dupes)
	}
	return nil
}

// runID is _validate_run_id.
func runID(id string) *apiError {
	if !runIDRegex.MatchString(id) {
		return invalid("Invalid run ID: '%s'", id)
	}
	return nil
}

// experimentID is _validate_experiment_id.
func experimentID(id string) *apiError {
	if !experimentIDRegex.MatchString(id) {
		return invalid("Invalid experiment ID: '%s'", id)
	}
	return nil
}

// experimentName is _validate_experiment_name.
func experimentName(name string) *apiError {
	if name == "" {
		return invalid("Invalid experiment name: '%s'", name)
	}
	if pyLen(name) > maxExperimentNameLength {
		return invalid("Experiment name exceeds the maximum length of %d characters", maxExperimentNameLength)
	}
	return nil
}

// modelVersion is _validate_model_version: Python's int() of the string.
func modelVersion(v string) *apiError {
	if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
		return invalid("Model version must be an integer, got '%s'", v)
	}
	return nil
}

// aliasName is _validate_model_alias_name.
func aliasName(a string) *apiError {
	if a == "" {
		return invalid("Registered model alias name cannot be empty.")
	}
	if !aliasRegex.MatchString(a) {
		return invalid("Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", a)
	}
	if err := lengthLimit("Registered model alias name", maxAliasLength, a); err != nil {
		return err
	}
	if strings.ToLower(a) == "latest" {
		return invalid("'latest' alias name (case insensitive) is reserved.")
	}
	if aliasVersionRegex.MatchString(a) {
		return invalid("Version alias name '%s' is reserved.", a)
	}
	return nil
}

// datasetInput is _validate_dataset and _validate_input_tag for one entry
// of runs/log-inputs. The required fields are checked by the caller
// (validate_required in handlers.py's _log_inputs schema).
func datasetInput(i int, d datasetInputMsg) *apiError {
	ds := d.Dataset
	for _, c := range []struct {
		field string
		limit int
		value *string
	}{
		{"name", maxDatasetNameSize, ds.Name},
		{"digest", MaxDatasetDigestSize, ds.Digest},
		{"source", maxDatasetSourceSize, ds.Source},
		{"schema", maxDatasetSchemaSize, ds.Schema},
		{"profile", maxDatasetProfileSize, ds.Profile},
	} {
		if c.value != nil && pyLen(*c.value) > c.limit {
			return invalid("Dataset %s exceeds the maximum length of %d (datasets[%d])", c.field, c.limit, i)
		}
	}
	for _, t := range d.Tags {
		if t.Key == nil {
			return invalid("InputTag key cannot be None")
		}
		if t.Value == nil {
			return invalid("InputTag value cannot be None")
		}
		if pyLen(*t.Key) > maxInputTagKeySize {
			return invalid("InputTag key exceeds the maximum length of %d", maxInputTagKeySize)
		}
		if pyLen(*t.Value) > maxInputTagValueSize {
			return invalid("InputTag value exceeds the maximum length of %d", maxInputTagValueSize)
		}
	}
	return nil
}

// batchRequestSize is _validate_batch_log_api_req, which handlers.py's
// _log_batch applies to the raw request body.
func batchRequestSize(body []byte) *apiError {
	if len(body) > maxBatchLogRequestSize {
		return invalid("Batched logging API requests must be at most %d bytes, got a request of size %d.", maxBatchLogRequestSize, len(body))
	}
	return nil
}
