package main

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// decodeSettings decodes viper's merged settings (YAML file plus LATCHKEY_* variables) into cfg,
// field by field. Each problem is reported with its full key and a message of ours, and decoding
// goes on past it, so that `config check` lists every problem in one run; a field that fails
// keeps its default. Only this function decides what a valid value is: no other library's error
// text is parsed or shown.
func decodeSettings(settings map[string]any, cfg *Config) []error {
	var errs []error
	decodeSection(reflect.ValueOf(cfg).Elem(), settings, "", &errs)
	return errs
}

var durationType = reflect.TypeOf(time.Duration(0))

// sectionFields maps a struct's mapstructure names to field indexes.
func sectionFields(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("mapstructure")
		if name == "" || name == "-" {
			continue
		}
		idx[name] = i
		names = append(names, name)
	}
	return idx, names
}

func decodeSection(v reflect.Value, m map[string]any, prefix string, errs *[]error) {
	idx, names := sectionFields(v.Type())
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := prefix + k
		i, ok := idx[strings.ToLower(k)]
		if !ok {
			msg := "unknown key"
			if s := suggest(strings.ToLower(k), names); s != "" {
				msg += "; did you mean " + prefix + s + "?"
			}
			*errs = append(*errs, fmt.Errorf("%s: %s (config.example.yaml lists every key)", key, msg))
			continue
		}
		decodeField(v.Field(i), m[k], key, errs)
	}
}

func decodeField(f reflect.Value, raw any, key string, errs *[]error) {
	bad := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	t := f.Type()
	switch {
	case t.Kind() == reflect.Struct:
		sub, ok := raw.(map[string]any)
		if !ok {
			bad("must be a section of keys (key: value lines indented below it), found %s", describe(raw))
			return
		}
		decodeSection(f, sub, key+".", errs)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		items, ok := raw.([]any)
		if !ok {
			bad("must be a list of sections (lines starting with \"- \"), found %s", describe(raw))
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			itemKey := fmt.Sprintf("%s[%d]", key, i)
			m, ok := it.(map[string]any)
			if !ok {
				*errs = append(*errs, fmt.Errorf("%s: must be a section of keys, found %s", itemKey, describe(it)))
				continue
			}
			decodeSection(out.Index(i), m, itemKey+".", errs)
		}
		f.Set(out)
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		list, err := stringList(raw)
		if err != nil {
			bad("%v", err)
			return
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		for i, s := range list {
			out.Index(i).SetString(s)
		}
		f.Set(out)
	case t == durationType:
		d, err := duration(raw)
		if err != nil {
			bad("%v", err)
			return
		}
		f.SetInt(int64(d))
	case t.Kind() == reflect.String:
		s, ok := scalar(raw)
		if !ok {
			bad("must be a single value, found %s", describe(raw))
			return
		}
		f.SetString(s)
	case t.Kind() == reflect.Int:
		n, err := wholeNumber(raw)
		if err != nil {
			bad("%v", err)
			return
		}
		f.SetInt(n)
	case t.Kind() == reflect.Float64:
		x, err := number(raw)
		if err != nil {
			bad("%v", err)
			return
		}
		f.SetFloat(x)
	case t.Kind() == reflect.Bool:
		b, err := boolean(raw)
		if err != nil {
			bad("%v", err)
			return
		}
		f.SetBool(b)
	default:
		// A field type this decoder does not know is a programming error; say so plainly.
		bad("cannot be set (unsupported type %s)", t)
	}
}

// scalar turns a YAML or environment scalar into its text.
func scalar(raw any) (string, bool) {
	switch x := raw.(type) {
	case string:
		return x, true
	case bool, int, int64, uint64, float64:
		return fmt.Sprint(x), true
	}
	return "", false
}

// stringList accepts a YAML list of scalars, or one string with commas (as LATCHKEY_* variables
// carry lists).
func stringList(raw any) ([]string, error) {
	switch x := raw.(type) {
	case string:
		var out []string
		for _, p := range strings.Split(x, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, it := range x {
			s, ok := scalar(it)
			if !ok {
				return nil, fmt.Errorf("item %d must be a single value, found %s", i, describe(it))
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("must be a list such as [a, b], found %s", describe(raw))
}

func duration(raw any) (time.Duration, error) {
	const want = "not a duration such as 90s, 15m or 24h"
	switch x := raw.(type) {
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return 0, fmt.Errorf("%s: %q", want, x)
		}
		return d, nil
	case int, int64, uint64, float64:
		// A bare number has no unit; only 0 means the same in every unit.
		if fmt.Sprint(x) == "0" {
			return 0, nil
		}
		return 0, fmt.Errorf("%s: %v has no unit", want, x)
	}
	return 0, fmt.Errorf("%s, found %s", want, describe(raw))
}

func wholeNumber(raw any) (int64, error) {
	switch x := raw.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("not a whole number: %q", x)
	}
	return 0, fmt.Errorf("not a whole number, found %s", describe(raw))
}

func number(raw any) (float64, error) {
	switch x := raw.(type) {
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		if n, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("not a number: %q", x)
	}
	return 0, fmt.Errorf("not a number, found %s", describe(raw))
}

func boolean(raw any) (bool, error) {
	switch x := raw.(type) {
	case bool:
		return x, nil
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, nil
		}
		return false, fmt.Errorf("must be true or false, got %q", x)
	}
	return false, fmt.Errorf("must be true or false, found %s", describe(raw))
}

// describe names what was found where something else was expected, without echoing its value
// (it could be a secret written under the wrong key).
func describe(raw any) string {
	switch raw.(type) {
	case map[string]any:
		return "a section"
	case []any:
		return "a list"
	case string:
		return "text"
	case bool:
		return "true/false"
	case nil:
		return "nothing"
	}
	return "a number"
}

// suggest returns the known name closest to an unknown one, when it is close enough to be a
// typo: at most one edit per three letters, and at least one.
func suggest(name string, known []string) string {
	best, bestD := "", len(name)/3+1
	for _, k := range known {
		if d := editDistance(name, k); d <= bestD && (best == "" || d < bestD || k < best) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between two short ASCII keys.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
