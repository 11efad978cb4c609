#!/bin/sh
# Create Temporal's two PostgreSQL databases and bring their schemas up to date; safe to rerun.
# Runs in temporalio/admin-tools, which ships temporal-sql-tool and the schema files.
set -eu

: "${POSTGRES_SEEDS:=postgresql}"
: "${DB_PORT:=5432}"
: "${POSTGRES_USER:=temporal}"
: "${DBNAME:=temporal}"
: "${VISIBILITY_DBNAME:=temporal_visibility}"
# temporal-sql-tool reads the password from SQL_PASSWORD; the env file names it once, for all.
SQL_PASSWORD="${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set (deploy/postgres.env)}"
export SQL_PASSWORD
SCHEMA=/etc/temporal/schema/postgresql/v12

sql() {
    temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$DB_PORT" \
        -u "$POSTGRES_USER" "$@"
}

setup() {
    db="$1"
    dir="$2"
    # "create" fails when the database exists, which after the first run it does.
    sql --db "$db" create 2>/dev/null || echo "database $db exists"
    # setup-schema on a set-up database would reset its version to 0.0 and make update-schema
    # replay every migration; so a database that updates cleanly is only updated.
    if sql --db "$db" update-schema -d "$dir"; then
        echo "schema of $db is up to date"
        return
    fi
    sql --db "$db" setup-schema -v 0.0
    sql --db "$db" update-schema -d "$dir"
    echo "schema of $db set up"
}

until nc -z "$POSTGRES_SEEDS" "$DB_PORT"; do
    echo "waiting for PostgreSQL at $POSTGRES_SEEDS:$DB_PORT"
    sleep 1
done
setup "$DBNAME" "$SCHEMA/temporal/versioned"
setup "$VISIBILITY_DBNAME" "$SCHEMA/visibility/versioned"
