package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/latchkeyhq/latchkey/store"
)

// copyTables are the tables `latchkey migrate` copies, parents before children, each with its
// primary key (the identity that makes a second run update rows instead of adding them).
var copyTables = []struct{ name, key string }{
	{"users", "id"},
	{"credentials", "id"},
	{"invites", "id"},
	{"recovery_codes", "id"},
	{"ceremonies", "id"},
	{"sessions", "id"},
	{"api_tokens", "id"},
	{"audit", "id"},
	{"oidc_clients", "id"},
	{"oidc_keys", "id"},
	{"oidc_auth_requests", "id"},
	{"oidc_tokens", "hash"},
	{"oidc_consents", "id"},
	{"oidc_sessions", "id"},
}

// tableCount is what migrate reports for one table.
type tableCount struct {
	table  string
	source int64 // rows read
	added  int64 // rows the target did not have before
}

func newMigrateCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --from sqlite:PATH --to postgres:DSN",
		Short: "Copy every table from one database to another (e.g. SQLite to PostgreSQL for replicas)",
		Long: "Copy users, passkeys, invites, recovery codes, ceremonies, sessions, API tokens and the audit log\n" +
			"from one database to another, in one transaction on the target. Rows are matched by their keys, so\n" +
			"running it again updates what changed and adds nothing twice. Stop the servers that write to the\n" +
			"source first; start them on the target afterwards. The target's schema is created when needed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return &exitError{code: 2, err: errors.New("migrate: --from and --to are both required")}
			}
			counts, err := migrateData(cmd.Context(), from, to)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			printCounts(cmd.OutOrStdout(), counts)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source database: sqlite:PATH or postgres:DSN")
	cmd.Flags().StringVar(&to, "to", "", "target database: postgres:DSN or sqlite:PATH")
	return cmd
}

func printCounts(w io.Writer, counts []tableCount) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tCOPIED\tNEW")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\n", c.table, c.source, c.added)
	}
	tw.Flush()
}

// migrateData copies every table of from into to and reports the counts.
func migrateData(ctx context.Context, from, to string) ([]tableCount, error) {
	fromDialect, fromWhere, err := parseStoreURL(from)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	toDialect, toWhere, err := parseStoreURL(to)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	if fromDialect == toDialect && fromWhere == toWhere {
		return nil, errors.New("--from and --to are the same database")
	}
	if fromDialect == store.SQLite {
		// Opening a SQLite path creates it: a typo would copy an empty database without a word.
		if _, err := os.Stat(fromWhere); err != nil {
			return nil, fmt.Errorf("--from: %w", err)
		}
	}
	src, err := openStoreURL(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("--from: %w", err)
	}
	defer src.Close()
	dst, err := openStoreURL(ctx, to)
	if err != nil {
		return nil, fmt.Errorf("--to: %w", err)
	}
	defer dst.Close()
	if err := checkTables(ctx, src); err != nil {
		return nil, err
	}
	sv, err := src.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	dv, err := dst.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if sv != dv {
		return nil, fmt.Errorf("schema versions differ (source %d, target %d)", sv, dv)
	}

	// Read the whole source in one transaction, so that the copy is a consistent picture.
	stx, err := src.DB().BeginTx(ctx, &sql.TxOptions{ReadOnly: src.Dialect() == store.Postgres})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer stx.Rollback()
	dtx, err := dst.DB().BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer dtx.Rollback()
	var counts []tableCount
	for _, t := range copyTables {
		c, err := copyTable(ctx, stx, dtx, dst.Dialect(), t.name, t.key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.name, err)
		}
		counts = append(counts, c)
	}
	// Move the target's revision past both, so that servers already on the target reload.
	var srcRev int64
	if err := stx.QueryRowContext(ctx, "SELECT n FROM revision WHERE id = 1").Scan(&srcRev); err != nil {
		return nil, fmt.Errorf("source revision: %w", err)
	}
	if _, err := dtx.ExecContext(ctx, rebind(dst.Dialect(), "UPDATE revision SET n = (CASE WHEN n > ? THEN n ELSE ? END) + 1 WHERE id = 1"),
		srcRev, srcRev); err != nil {
		return nil, fmt.Errorf("target revision: %w", err)
	}
	if err := dtx.Commit(); err != nil {
		return nil, fmt.Errorf("target: commit: %w", err)
	}
	return counts, nil
}

// checkTables refuses a source with tables this command does not know how to copy (a schema
// from a newer migration that forgot to list them), rather than leaving data behind silently.
func checkTables(ctx context.Context, st *store.Store) error {
	query := "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
	if st.Dialect() == store.Postgres {
		query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	}
	rows, err := st.DB().QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("list source tables: %w", err)
	}
	defer rows.Close()
	known := map[string]bool{"schema_version": true, "revision": true, "changes": true, "heartbeat": true}
	for _, t := range copyTables {
		known[t.name] = true
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return err
		}
		if !known[name] {
			return fmt.Errorf("the source has a table %q that this version cannot copy", name)
		}
	}
	return rows.Err()
}

// copyTable upserts every row of one table by its key and counts what it read and what was new.
func copyTable(ctx context.Context, src, dst *sql.Tx, dialect store.Dialect, table, key string) (tableCount, error) {
	c := tableCount{table: table}
	before, err := countRows(ctx, dst, table)
	if err != nil {
		return c, err
	}
	binary, err := binaryColumns(ctx, dst, dialect, table)
	if err != nil {
		return c, err
	}
	rows, err := src.QueryContext(ctx, "SELECT * FROM "+table+" ORDER BY "+key)
	if err != nil {
		return c, fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return c, err
	}
	marks := make([]string, len(cols))
	var set []string
	for i, col := range cols {
		marks[i] = "?"
		if col != key {
			set = append(set, col+" = excluded."+col)
		}
	}
	insert := rebind(dialect, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(marks, ", ")+
		") ON CONFLICT ("+key+") DO UPDATE SET "+strings.Join(set, ", "))
	stmt, err := dst.PrepareContext(ctx, insert)
	if err != nil {
		return c, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return c, fmt.Errorf("read: %w", err)
		}
		for i, col := range cols {
			// SQLite keeps what it was given; a BLOB column may hand back text, and bytea wants bytes.
			if s, ok := vals[i].(string); ok && binary[col] {
				vals[i] = []byte(s)
			}
		}
		if _, err := stmt.ExecContext(ctx, vals...); err != nil {
			return c, fmt.Errorf("write row %v: %w", vals[indexOf(cols, key)], conflictHint(err))
		}
		c.source++
	}
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("read: %w", err)
	}
	after, err := countRows(ctx, dst, table)
	if err != nil {
		return c, err
	}
	c.added = after - before
	if dialect == store.Postgres && key == "id" {
		// Explicit ids bypass the identity sequence: move it past them, or the next insert collides.
		var isIdentity bool
		if err := dst.QueryRowContext(ctx, "SELECT pg_get_serial_sequence($1, 'id') IS NOT NULL", table).Scan(&isIdentity); err != nil {
			return c, fmt.Errorf("sequence: %w", err)
		}
		if isIdentity {
			if _, err := dst.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence($1, 'id'), COALESCE((SELECT MAX(id) FROM "+table+"), 0) + 1, false)", table); err != nil {
				return c, fmt.Errorf("sequence: %w", err)
			}
		}
	}
	return c, nil
}

// conflictHint explains the one failure an operator can fix: a target that already holds other
// data with the same names (say, a server that ran on it first and made its own admin).
func conflictHint(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "23505") || strings.Contains(msg, "UNIQUE constraint") {
		return fmt.Errorf("%w (the target holds other rows with the same unique value: migrate into an empty database)", err)
	}
	return err
}

func indexOf(l []string, s string) int {
	for i, v := range l {
		if v == s {
			return i
		}
	}
	return 0
}

func countRows(ctx context.Context, tx *sql.Tx, table string) (int64, error) {
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	return n, nil
}

// binaryColumns lists the columns of a target table that hold bytes.
func binaryColumns(ctx context.Context, tx *sql.Tx, dialect store.Dialect, table string) (map[string]bool, error) {
	query := "SELECT name, type FROM pragma_table_info(?)"
	if dialect == store.Postgres {
		query = "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1"
	}
	rows, err := tx.QueryContext(ctx, query, table)
	if err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		typ = strings.ToLower(typ)
		out[name] = typ == "bytea" || typ == "blob"
	}
	return out, rows.Err()
}

// rebind turns ? placeholders into $n for PostgreSQL.
func rebind(dialect store.Dialect, query string) string {
	if dialect != store.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
