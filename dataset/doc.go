// Package dataset turns a pipeline's data files into a validated,
// deduplicated, deterministically split snapshot: the input of training and
// evaluation.
//
// Files are JSONL (.jsonl, .json), CSV (.csv) or plain text (.txt, one
// example per blank-line-separated paragraph), in one of four formats:
//
//	text            {"text": ...}                      the whole text is the completion
//	alpaca          {"instruction","input","output"}   loss on the output only
//	chat            {"messages":[{"role","content"}]}  with the model's chat template: loss on every
//	                                                   assistant turn; without one: on the last
//	classification  {"text","label"}                   loss on the label; accuracy by label
//
// Every row is validated; a bad row is reported by file and line. Up to
// Options.MaxBadRows bad rows are skipped (and listed in the manifest), more
// make Prepare fail with a *BadDataError. The train/validation split hashes
// each example with the seed, so it does not depend on file order.
package dataset
