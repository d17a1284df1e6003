#!/usr/bin/env bash
# Create the demo client and user with the porchlight-op CLI. Running it again
# is safe: a client or user that already exists is left unchanged.
#
# Settings such as PORCHLIGHT_REDIS_URL reach the CLI through the environment.
# The demo values come from these variables, named outside PORCHLIGHT_ because
# the CLI rejects PORCHLIGHT_* variables that are not settings:
#   DEMO_CLIENT_ID      client id (default demo-rp)
#   DEMO_REDIRECT_URI   the client's redirect URI
#                       (default http://localhost:9000/callback)
#   DEMO_CLIENT_SECRET  client secret; when empty, the CLI generates one and
#                       prints it once
#   DEMO_USERNAME       username (default demo)
#   DEMO_PASSWORD       password; when empty, one is generated and printed once
#   DEMO_EMAIL          email claim (default demo@example.com)
#   DEMO_NAME           name claim (default "Demo User")
#   OP_CLI              the porchlight-op command (default: the one on PATH)
set -euo pipefail

cli=${OP_CLI:-porchlight-op}
client_id=${DEMO_CLIENT_ID:-demo-rp}
redirect_uri=${DEMO_REDIRECT_URI:-http://localhost:9000/callback}
client_secret=${DEMO_CLIENT_SECRET:-}
username=${DEMO_USERNAME:-demo}
password=${DEMO_PASSWORD:-}
email=${DEMO_EMAIL:-demo@example.com}
name=${DEMO_NAME:-Demo User}

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

# Run a CLI command and return 0 if it succeeds or 1 if its target already
# exists. Any other failure prints the CLI's error and exits the script.
created() {
    if "$@" 2>"$errors"; then
        return 0
    fi
    if grep -q "already exists" "$errors"; then
        return 1
    fi
    cat "$errors" >&2
    exit 1
}

client_args=(client add "$client_id" --redirect-uri "$redirect_uri"
    --name "Demo relying party")
if [ -n "$client_secret" ]; then
    # NOTE: the CLI takes the secret only as an argument, so it shows in the
    # process list while the command runs.
    client_args+=(--secret "$client_secret")
fi
if ! created "$cli" "${client_args[@]}"; then
    echo "client $client_id already exists, left unchanged"
fi

generated=false
if [ -z "$password" ]; then
    password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    generated=true
fi
user_args=(user add "$username" --password-stdin --email "$email" --name "$name")
if created "$cli" "${user_args[@]}" <<<"$password"; then
    echo "added user $username"
    if [ "$generated" = true ]; then
        echo "password: $password"
        echo "The password is shown only this once; store it now."
    fi
else
    echo "user $username already exists, its password is unchanged"
fi
