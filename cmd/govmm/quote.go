package main

import "strings"

// commandText is the shell text govmm exec runs for the words after --:
// one word is shell text as it is (`govmm exec -- 'echo hi; exit 3'`),
// several are quoted word by word, so `govmm exec -- ls -l 'a b'` lists
// one file called "a b".
func commandText(words []string) string {
	if len(words) == 1 {
		return words[0]
	}
	return shellJoin(words)
}

// shellJoin quotes each word for a POSIX shell and joins them with spaces.
func shellJoin(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellQuote(w)
	}
	return strings.Join(quoted, " ")
}

// shellQuote returns w as one POSIX shell word: as it is when it holds only
// characters no shell treats specially, else in single quotes, where each
// single quote of w closes the quotes, adds an escaped quote and reopens
// them:
//
//	it's  ->  'it'\''s'
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+:,./-") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
