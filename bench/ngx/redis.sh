# bench/ngx/redis.sh, sourced by bench/ngx.sh and bench/ngx_instr.sh:
#   start_redis PORT DIR   a throwaway redis-server on 127.0.0.1:PORT (no
#                          disk), its files in DIR; sets redis_pid (the
#                          caller stops it by that PID) and waits, 5 s at
#                          most, until it answers PING
start_redis() {
    mkdir -p "$2"
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$2" \
        --logfile "$2/log" &
    redis_pid=$!
    for _ in $(seq 1 100); do redis-cli -p "$1" ping >/dev/null 2>&1 && break; sleep 0.05; done
}
