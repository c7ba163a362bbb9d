#!/usr/bin/env bash
# demo.sh - the README's first command: build etld, generate Sparkify-shaped
# data, start etld, run the etl pipeline into the embedded SQLite warehouse,
# print the result, stop etld.  Everything lives in .demo/ of the checkout.
#
#   scripts/demo.sh [--events N] [--songs N] [--seed N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
events=20000 songs=500 seed=1
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --songs) songs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "demo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/deps.sh"
"$root/scripts/build.sh"
build=$root/build
demo=$root/.demo
rm -rf "$demo"
mkdir -p "$demo/state"
echo "== generating $events events and $songs songs (seed $seed)"
"$build/bench/etld-gen" --out "$demo/data" --events "$events" --songs "$songs" --seed "$seed"
cat > "$demo/etld.conf" <<CONF
[daemon]
sql_dir = $root/sql
[s3]
song_data = file://$demo/data/song_data
log_data = file://$demo/data/log_data
log_jsonpath = file://$demo/data/log_json_path.json
[warehouse]
target = sqlite://$demo/state/warehouse.db
CONF
export ETLD_SOCKET=$demo/etld.sock
echo "== starting etld (log: $demo/state/etld.log)"
"$build/daemon/etld" --config "$demo/etld.conf" --state-dir "$demo/state"
trap 'kill -TERM "$(pgrep -f "etld --config $demo/etld.conf" | head -1)" 2>/dev/null || true' EXIT
echo "== etlctl submit etl --wait"
status=0
"$build/client/etlctl" submit etl --wait || status=$?
echo
"$build/client/etlctl" status 1 || true
echo
echo "== the star schema in $demo/state/warehouse.db"
sqlite3 -header -column "$demo/state/warehouse.db" <<'SQL'
SELECT 'songplays' AS "table", COUNT(*) AS "rows" FROM songplays
UNION ALL SELECT 'users', COUNT(*) FROM users
UNION ALL SELECT 'songs', COUNT(*) FROM songs
UNION ALL SELECT 'artists', COUNT(*) FROM artists
UNION ALL SELECT 'time', COUNT(*) FROM time;
SELECT t.weekday, COUNT(*) AS plays, COUNT(p.song_id) AS matched
FROM songplays p JOIN time t USING (start_time) GROUP BY t.weekday ORDER BY t.weekday;
SQL
exit $status
