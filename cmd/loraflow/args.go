package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// exactArgs is cobra.ExactArgs with an error that names what is missing or
// extra, taken from the command's Use line ("show MODEL VERSION|@ALIAS"):
// "show: missing VERSION|@ALIAS (usage: loraflow registry show MODEL
// VERSION|@ALIAS)" instead of cobra's bare "accepts 2 arg(s), received 1".
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argsError(cmd, args, n)
	}
}

// minimumArgs is cobra.MinimumNArgs with exactArgs' error.
func minimumArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= n {
			return nil
		}
		return argsError(cmd, args, n)
	}
}

func argsError(cmd *cobra.Command, args []string, n int) error {
	usage := cmd.UseLine()
	if len(args) < n {
		names := positionalNames(cmd.Use)
		missing := fmt.Sprintf("%d more argument(s)", n-len(args))
		if len(names) >= n {
			missing = strings.Join(names[len(args):n], " and ")
		}
		return fmt.Errorf("%s: missing %s (usage: %s)", cmd.Name(), missing, usage)
	}
	return fmt.Errorf("%s: takes %d argument(s), got %d (%s) (usage: %s)", cmd.Name(), n, len(args), strings.Join(args[n:], " "), usage)
}

// positionalNames returns the positional argument names of a Use line: the
// words after the command name that are not flags, flag values or optional
// ("[...]") parts.
func positionalNames(use string) []string {
	words := strings.Fields(use)
	var names []string
	afterFlag, depth := false, 0
	for _, w := range words[min(1, len(words)):] {
		opening, closing := strings.Count(w, "[")+strings.Count(w, "("), strings.Count(w, "]")+strings.Count(w, ")")
		switch {
		case depth > 0 || opening > 0:
		case strings.HasPrefix(w, "-"):
			afterFlag = !strings.Contains(w, "=")
			continue
		case afterFlag:
		default:
			names = append(names, strings.TrimSuffix(w, "..."))
		}
		depth += opening - closing
		afterFlag = false
	}
	return names
}
