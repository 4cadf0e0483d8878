package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/latchkeyhq/latchkey/store"
)

// openPostgresStore opens the shared PostgreSQL store that replicas use (storage.postgres.dsn).
// The DSN may carry a password, so errors name the key, never the value.
func openPostgresStore(ctx context.Context, dsn string, opts store.Options) (*store.Store, error) {
	st, err := store.OpenPostgres(ctx, dsn, opts)
	if err != nil {
		return nil, fmt.Errorf("storage.postgres: %w", err)
	}
	return st, nil
}

// parseStoreURL splits the --from/--to arguments of `latchkey migrate`: "sqlite:PATH" or
// "postgres:DSN" (the DSN may itself be a postgres:// URL, so "postgres://..." is accepted whole).
func parseStoreURL(arg string) (store.Dialect, string, error) {
	switch {
	case strings.HasPrefix(arg, "sqlite:"):
		path := strings.TrimPrefix(arg, "sqlite:")
		if path == "" {
			return "", "", fmt.Errorf("%q: no SQLite file path after the sqlite: prefix", arg)
		}
		return store.SQLite, path, nil
	case strings.HasPrefix(arg, "postgres://"), strings.HasPrefix(arg, "postgresql://"):
		return store.Postgres, arg, nil
	case strings.HasPrefix(arg, "postgres:"):
		dsn := strings.TrimPrefix(arg, "postgres:")
		if dsn == "" {
			return "", "", fmt.Errorf("no DSN after the postgres: prefix")
		}
		return store.Postgres, dsn, nil
	}
	return "", "", fmt.Errorf("a database is sqlite:PATH or postgres:DSN")
}

// openStoreURL opens a store named as parseStoreURL reads it.
func openStoreURL(ctx context.Context, arg string) (*store.Store, error) {
	dialect, where, err := parseStoreURL(arg)
	if err != nil {
		return nil, err
	}
	if dialect == store.SQLite {
		return store.Open(ctx, store.Options{Path: where})
	}
	return openPostgresStore(ctx, where, store.Options{})
}
