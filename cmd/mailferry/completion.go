package main

import (
	"fmt"
	"io"
	"strings"
)

const usageCompletion = `Usage: mailferry completion bash|zsh|fish

Prints a shell completion script for mailferry's commands and flags (made
from the same flag definitions the commands parse).

Examples:
  # bash: now, or for good
  source <(mailferry completion bash)
  mailferry completion bash > /etc/bash_completion.d/mailferry
  # zsh (a directory in $fpath)
  mailferry completion zsh > "${fpath[1]}/_mailferry"
  # fish
  mailferry completion fish > ~/.config/fish/completions/mailferry.fish
`

func cmdCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprint(stdout, usageCompletion)
		return exitOK
	}
	if len(args) != 1 {
		fmt.Fprintln(stderr, "mailferry completion: want one shell: bash, zsh or fish; usage: mailferry completion bash|zsh|fish")
		return exitUsage
	}
	switch args[0] {
	case "bash":
		fmt.Fprint(stdout, bashCompletion())
	case "zsh":
		fmt.Fprint(stdout, zshCompletion())
	case "fish":
		fmt.Fprint(stdout, fishCompletion())
	default:
		hint := ""
		if m := didYouMean(args[0], []string{"bash", "zsh", "fish"}); m != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", m)
		}
		fmt.Fprintf(stderr, "mailferry completion: unknown shell %q%s; want bash, zsh or fish\n", args[0], hint)
		return exitUsage
	}
	return exitOK
}

func commandNames() []string {
	var out []string
	for _, c := range commands {
		out = append(out, c.name)
	}
	return out
}

// flagsOf lists a command's flags as "--name" words, with the one-letter
// aliases ("-v").
func flagsOf(c *command) []string {
	if c.flags == nil {
		return nil
	}
	fs, _ := c.flags()
	var out []string
	for _, n := range allFlagNames(fs) {
		out = append(out, "--"+n)
		if a := shortAlias[n]; a != "" {
			out = append(out, "-"+a)
		}
	}
	return out
}

func bashCompletion() string {
	var b strings.Builder
	b.WriteString(`# bash completion for mailferry (mailferry completion bash)
_mailferry() {
    local cur cmd
    cur="${COMP_WORDS[COMP_CWORD]}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "` + strings.Join(commandNames(), " ") + `" -- "$cur"))
        return
    fi
    cmd="${COMP_WORDS[1]}"
    case "$cmd" in
`)
	for _, c := range commands {
		words := flagsOf(c)
		switch c.name {
		case "help":
			words = commandNames()
		case "completion":
			words = []string{"bash", "zsh", "fish"}
		}
		if len(words) == 0 {
			continue
		}
		fmt.Fprintf(&b, "        %s)\n            if [[ \"$cur\" == -* || %q == help || %q == completion ]]; then\n                COMPREPLY=($(compgen -W %q -- \"$cur\"))\n            else\n                COMPREPLY=($(compgen -f -- \"$cur\"))\n            fi\n            ;;\n",
			c.name, c.name, c.name, strings.Join(words, " "))
	}
	b.WriteString("    esac\n}\ncomplete -o default -F _mailferry mailferry\n")
	return b.String()
}

// shellQuote quotes s for a single-quoted shell word.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func zshCompletion() string {
	var b strings.Builder
	b.WriteString("#compdef mailferry\n# zsh completion for mailferry (mailferry completion zsh)\n_mailferry() {\n  local -a cmds\n  cmds=(\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "    %s\n", shellQuote(c.name+":"+c.summary))
	}
	b.WriteString("  )\n  if (( CURRENT == 2 )); then\n    _describe command cmds\n    return\n  fi\n  case $words[2] in\n")
	for _, c := range commands {
		switch c.name {
		case "help":
			fmt.Fprintf(&b, "    help) _values command %s ;;\n", strings.Join(commandNames(), " "))
			continue
		case "completion":
			b.WriteString("    completion) _values shell bash zsh fish ;;\n")
			continue
		}
		if c.flags == nil {
			continue
		}
		fs, _ := c.flags()
		fmt.Fprintf(&b, "    %s) _arguments \\\n", c.name)
		for _, n := range allFlagNames(fs) {
			f := fs.Lookup(n)
			help := strings.NewReplacer("[", "(", "]", ")", "'", "", ":", " ").Replace(firstLine(flagHelp(f)))
			arg := ""
			if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool {
				arg = ":" + strings.ToLower(strings.Fields(flagSynopsis(f))[len(strings.Fields(flagSynopsis(f)))-1]) + ":_files"
			}
			if a := shortAlias[n]; a != "" {
				fmt.Fprintf(&b, "        '(-%s --%s)'{-%s,--%s}'[%s]%s' \\\n", a, n, a, n, help, arg)
				continue
			}
			fmt.Fprintf(&b, "        '--%s[%s]%s' \\\n", n, help, arg)
		}
		b.WriteString("        '*:endpoint:_files' ;;\n")
	}
	b.WriteString("  esac\n}\n_mailferry \"$@\"\n")
	return b.String()
}

func fishCompletion() string {
	var b strings.Builder
	b.WriteString("# fish completion for mailferry (mailferry completion fish)\n")
	b.WriteString("complete -c mailferry -f -n __fish_use_subcommand\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "complete -c mailferry -f -n __fish_use_subcommand -a %s -d %s\n", c.name, shellQuote(c.summary))
	}
	for _, c := range commands {
		cond := "__fish_seen_subcommand_from " + c.name
		switch c.name {
		case "help":
			fmt.Fprintf(&b, "complete -c mailferry -f -n %s -a %s\n", shellQuote(cond), shellQuote(strings.Join(commandNames(), " ")))
			continue
		case "completion":
			fmt.Fprintf(&b, "complete -c mailferry -f -n %s -a 'bash zsh fish'\n", shellQuote(cond))
			continue
		}
		if c.flags == nil {
			continue
		}
		fs, _ := c.flags()
		for _, n := range allFlagNames(fs) {
			f := fs.Lookup(n)
			line := fmt.Sprintf("complete -c mailferry -n %s -l %s", shellQuote(cond), n)
			if a := shortAlias[n]; a != "" {
				line += " -s " + a
			}
			if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool {
				line += " -r"
			}
			fmt.Fprintf(&b, "%s -d %s\n", line, shellQuote(firstLine(flagHelp(f))))
		}
	}
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
