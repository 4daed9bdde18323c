package sqlstore

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// micros stores t as unix microseconds; the zero time is 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// fromMicros reverses micros: 0 is the zero time, anything else is UTC.
func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// jsonText encodes v, which is always a slice or map of plain strings or
// string structs here, so encoding cannot fail. A nil slice or map is
// "null", which keeps it apart from an empty one.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable for the types stored; keep the row readable anyway.
		return "null"
	}
	return string(b)
}

// decodeJSON decodes a JSON column into dst, naming the column on error.
func decodeJSON(col, text string, dst any) error {
	if text == "null" {
		return nil // leaves dst nil
	}
	if err := json.Unmarshal([]byte(text), dst); err != nil {
		return fmt.Errorf("decode %s: %w", col, err)
	}
	return nil
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// splitCols turns "a, b, c" into its column names.
func splitCols(cols string) []string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

// prefixCols qualifies every column of cols with alias.
func prefixCols(alias, cols string) string {
	parts := splitCols(cols)
	for i, p := range parts {
		parts[i] = alias + "." + p
	}
	return strings.Join(parts, ", ")
}

// insertSQL is INSERT INTO table (cols) VALUES (?, ...).
func insertSQL(table, cols string) string {
	n := len(splitCols(cols))
	return "INSERT INTO " + table + " (" + cols + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
}

// upsertSQL is insertSQL that replaces every column but key on conflict.
func upsertSQL(table, key, cols string) string {
	var set []string
	for _, c := range splitCols(cols) {
		if c != key {
			set = append(set, c+" = excluded."+c)
		}
	}
	return insertSQL(table, cols) + " ON CONFLICT (" + key + ") DO UPDATE SET " + strings.Join(set, ", ")
}

// updateSQL is UPDATE table SET (every column but key) = ? WHERE key = ?.
func updateSQL(table, key, cols string) string {
	var set []string
	for _, c := range splitCols(cols) {
		if c != key {
			set = append(set, c+" = ?")
		}
	}
	return "UPDATE " + table + " SET " + strings.Join(set, ", ") + " WHERE " + key + " = ?"
}
