#!/bin/sh
# Serves the same repository files with ferry serve and with nginx over TLS
# on 127.0.0.1 (same certificate and key, TLS 1.3 with TLS_AES_128_GCM_SHA256
# on both, keep-alive, access log on in both, written to a file) and loads
# each with wrk, alternating, for timestamp.json and for an immutable
# (hash-prefixed) target file. Prints every run and the ferry/nginx ratios.
#
# ferry runs in its default configuration (what users run): the access log
# goes to stderr, redirected here to a file. nginx runs with Debian's
# defaults (worker_processes auto, open_file_cache off) except for the
# certificate, the TLS 1.3 cipher suite and keepalive_requests (raised from
# 1000 so that neither server makes TLS handshakes during a run).
#
# Usage: sh bench/serve/run.sh [SECONDS] [REPS]      (defaults: 10 s, 3 reps)
# Environment:
#   BASELINE=FILE   also measure this ferry binary (e.g. built from an older
#                   commit), alternating with the others
#   FLOOR=1         also measure bench/serve/floor: Go's net/http and
#                   crypto/tls answering with the file from memory, no log,
#                   no file check (what ferry serve cannot go below)
#   CONNS, THREADS  wrk's -c and -t (defaults 64 and 2)
#   SIZE            bytes of the target file (default 16384)
#   PROFILE=DIR     afterwards, CPU-profile ferry serve itself under wrk (a
#                   binary built with -tags ferry_benchprofile, which users'
#                   builds lack) and write DIR/*.out, the top functions to
#                   DIR/*.txt and the binary to DIR/ferry-prof (for pprof)
# Needs openssl, nginx and wrk: nginx-light and wrk are installed with
# apt-get when missing (as root). Nothing listens on anything but 127.0.0.1.
set -eu
secs=${1:-10}
reps=${2:-3}
conns=${CONNS:-64}
threads=${THREADS:-2}
size=${SIZE:-16384}
src=$(pwd)

if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
	echo "bench/serve: nginx or wrk missing: installing nginx-light and wrk with apt-get" >&2
	apt-get install -y --no-install-recommends nginx-light wrk >/dev/null
fi
command -v openssl >/dev/null || { echo "bench/serve: openssl is needed" >&2; exit 1; }

work=$(mktemp -d)
chmod 755 "$work" # nginx's workers (user nobody when started as root) read the files
ngx=""
fsrv=""
cleanup() {
	[ -n "$fsrv" ] && kill "$fsrv" 2>/dev/null || true
	[ -n "$ngx" ] && kill "$ngx" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

echo "building ferry" >&2
go build -o "$work/ferry" ./cmd/ferry
[ -z "${FLOOR:-}" ] || go build -o "$work/floor" ./bench/serve/floor
cd "$work"

# Repository: ferry init + one release of a SIZE-byte file. The scrypt work
# factor is lowered for this set-up only; it plays no part in serving.
export FERRY_PASSPHRASE=bench FERRY_INSECURE_SCRYPT_WORK_FACTOR=10
plat=$(go env GOOS)/$(go env GOARCH)
./ferry init repo --offline-keys offline >/dev/null 2>&1
./ferry key generate --out app.key >/dev/null 2>&1
head -c "$size" /dev/urandom > payload
./ferry release publish --repo repo --offline-keys offline --app-key app.key --app hello \
	--version 1.0.0 --platform "$plat" payload >/dev/null
unset FERRY_PASSPHRASE FERRY_INSECURE_SCRYPT_WORK_FACTOR
# ferry serve holds a file in memory only once it is 2 s old (a file
# changed more recently could change again within the file times'
# granularity, server/memo_linux.go): measure the steady state, not the
# first 2 s after a publish.
sleep 3
target=$(cd repo/public && find targets -type f -name '*.payload' | head -n 1)
[ -n "$target" ] || { echo "bench/serve: no target file published" >&2; exit 1; }

# A self-signed CA and an ECDSA P-256 server certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
	-days 2 -subj /CN=ferry-bench-ca >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out leaf.csr \
	-subj /CN=127.0.0.1 >/dev/null 2>&1
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
	-out cert.pem >/dev/null 2>&1

# nginx on a free port of 127.0.0.1 (tries a few).
mkdir -p ng/tmp
start_nginx() {
	cat > ng/nginx.conf <<EOF
daemon off;
worker_processes auto;
pid $work/ng/nginx.pid;
error_log $work/ng/error.log warn;
events { worker_connections 1024; }
http {
	include /etc/nginx/mime.types;
	access_log $work/ng/access.log;
	client_body_temp_path $work/ng/tmp/body;
	proxy_temp_path $work/ng/tmp/proxy;
	fastcgi_temp_path $work/ng/tmp/fastcgi;
	uwsgi_temp_path $work/ng/tmp/uwsgi;
	scgi_temp_path $work/ng/tmp/scgi;
	sendfile on;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$1 ssl;
		ssl_certificate $work/cert.pem;
		ssl_certificate_key $work/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
		root $work/repo/public;
	}
}
EOF
	nginx -e "$work/ng/error.log" -p "$work/ng" -c "$work/ng/nginx.conf" >ng/out 2>&1 &
	ngx=$!
}
wait_up() { # URL: until it answers 200, or fail
	i=0
	until curl -fsS --cacert ca.pem -o /dev/null "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 100 ] && return 1
		sleep 0.05
	done
}
tries=0
while :; do
	port=$(( 20000 + ($$ * 7 + tries * 977) % 40000 ))
	start_nginx "$port"
	nurl="https://127.0.0.1:$port"
	if wait_up "$nurl/metadata/timestamp.json"; then break; fi
	kill "$ngx" 2>/dev/null || true
	wait "$ngx" 2>/dev/null || true
	ngx=""
	tries=$((tries + 1))
	[ $tries -lt 5 ] || { cat ng/out ng/error.log >&2; exit 1; }
done

# ferry serve in its default configuration (access log on stderr, here a
# file), with the same certificate and key.
start_ferry() { # BINARY
	rm -f url.txt
	# A database of its own for each binary: an older ferry refuses a newer schema.
	"$1" serve --repo repo --db "$work/$(echo "$1" | tr / _).db" --addr 127.0.0.1:0 --addr-file url.txt \
		--tls-cert cert.pem --tls-key key.pem >ferry.out 2>>ferry-access.log &
	fsrv=$!
	i=0
	while [ ! -s url.txt ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && { cat ferry.out ferry-access.log >&2; exit 1; }
		sleep 0.05
	done
	furl=$(sed 's,/$,,' url.txt)
	wait_up "$furl/metadata/timestamp.json"
}
# The floor (bench/serve/floor): net/http and crypto/tls answering with
# the file's bytes from memory, nothing else.
start_floor() { # PATH (under repo/public)
	rm -f url.txt
	./floor -file "repo/public$1" -cert cert.pem -key key.pem -addr-file url.txt >ferry.out 2>&1 &
	fsrv=$!
	i=0
	while [ ! -s url.txt ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && { cat ferry.out >&2; exit 1; }
		sleep 0.05
	done
	furl=$(sed 's,/$,,' url.txt)
	wait_up "$furl$1"
}
stop_ferry() {
	kill "$fsrv" 2>/dev/null || true
	wait "$fsrv" 2>/dev/null || true
	fsrv=""
}

tlsinfo() { # URL
	echo | openssl s_client -connect "${1#https://}" -CAfile ca.pem 2>/dev/null |
		awk '/^Server Temp Key:/{sub(/^Server Temp Key: /,""); key=$0} /^New, /{sub(/^New, /,""); tls=$0} END{print tls ", key exchange " key}'
}

# CPU time (utime+stime, clock ticks) of PIDS and their threads, summed.
cputicks() { # PID...
	t=0
	for pid in "$@"; do
		[ -r "/proc/$pid/stat" ] || continue
		# fields after the command name (which may hold spaces)
		set -- $(sed 's/^.*) //' "/proc/$pid/stat")
		t=$((t + ${12} + ${13}))
	done
	echo $t
}

# One wrk run: prints "req/s avg p50 p99 errors server-cpu-us/req".
wrk_run() { # URL PID...: the server's processes, for its CPU time
	url=$1
	shift
	c0=$(cputicks "$@")
	wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "$url" > wrk.out 2>&1 || true
	c1=$(cputicks "$@")
	hz=$(getconf CLK_TCK)
	awk -v ticks=$((c1 - c0)) -v hz="$hz" '
		/requests in/ {n=$1}
		/Requests\/sec:/ {rps=$2}
		/^    Latency/ {avg=$2}
		/^     50%/ {p50=$2}
		/^     99%/ {p99=$2}
		/Non-2xx/ {err+=$NF}
		/Socket errors/ {gsub(/,/,""); err+=$4+$6+$8+$10}
		END {printf "%s %s %s %s %d %.1f\n", rps, avg, p50, p99, err, n ? ticks / hz * 1e6 / n : 0}' wrk.out
}

servers="ferry nginx"
[ -n "${FLOOR:-}" ] && servers="ferry floor nginx"
[ -n "${BASELINE:-}" ] && servers="baseline $servers"
echo "# bench/serve: wrk -t$threads -c$conns -d${secs}s --latency, $reps reps, alternating ($servers)"
echo "# commit $(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$src" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'); $(go version)"
echo "# $(nginx -v 2>&1); $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2); $(openssl version)"
echo "# files: metadata/timestamp.json ($(wc -c < repo/public/metadata/timestamp.json) bytes), $target ($size bytes)"
echo "# access log on in both (ferry: default, stderr to a file; nginx: combined format to a file)"
echo "# TLS: nginx $(tlsinfo "$nurl")"
for s in $servers; do
	case $s in
	ferry) start_ferry ./ferry ;;
	baseline) start_ferry "$BASELINE" ;;
	*) continue ;;
	esac
	echo "# TLS: $s $(tlsinfo "$furl")"
	stop_ferry
done
echo "# load before: $(uptime | sed 's/.*load/load/')"
echo
printf '| rep | file | server | req/s | latency avg | p50 | p99 | errors | server CPU µs/req |\n|---:|---|---|---:|---:|---:|---:|---:|---:|\n'
results=$work/results
: > "$results"
rep=1
while [ $rep -le "$reps" ]; do
	for file in timestamp target; do
		p=/metadata/timestamp.json
		[ $file = target ] && p=/$target
		for s in $servers; do
			case $s in
			nginx) url=$nurl ;;
			ferry) start_ferry ./ferry; url=$furl ;;
			baseline) start_ferry "$BASELINE"; url=$furl ;;
			floor) start_floor "$p"; url=$furl ;;
			esac
			pids=$fsrv
			[ $s = nginx ] && pids="$ngx $(pgrep -P "$ngx" | tr '\n' ' ')"
			set -- $(wrk_run "$url$p" $pids)
			[ $s = nginx ] || stop_ferry
			echo "$rep $file $s $1 $2 $3 $4 $5 $6" >> "$results"
			printf '| %s | %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$rep" "$file" "$s" "$1" "$2" "$3" "$4" "$5" "$6"
		done
	done
	rep=$((rep + 1))
done
echo
echo "# load after: $(uptime | sed 's/.*load/load/')"
echo
# Ratios to nginx within each rep (same rep, same file: run back to back).
printf '| file | server | median req/s | median server CPU µs/req | ratio to nginx, per rep | median ratio |\n|---|---|---:|---:|---|---:|\n'
for file in timestamp target; do
	for s in $servers; do
		awk -v f=$file -v s=$s '
			$2 == f && $3 == "nginx" {n[$1] = $4}
			$2 == f && $3 == s {v[$1] = $4; c[++k] = $9; reps[k] = $1}
			END {
				for (i = 1; i <= k; i++) { r[i] = v[reps[i]] / n[reps[i]]; q[i] = v[reps[i]]; list = list (i > 1 ? ", " : "") sprintf("%.2f", r[i]) }
				# medians by insertion sort
				for (i = 2; i <= k; i++) for (j = i; j > 1 && r[j-1] > r[j]; j--) { t = r[j]; r[j] = r[j-1]; r[j-1] = t }
				for (i = 2; i <= k; i++) for (j = i; j > 1 && q[j-1] > q[j]; j--) { t = q[j]; q[j] = q[j-1]; q[j-1] = t }
				for (i = 2; i <= k; i++) for (j = i; j > 1 && c[j-1] > c[j]; j--) { t = c[j]; c[j] = c[j-1]; c[j-1] = t }
				mr = (k % 2) ? r[(k + 1) / 2] : (r[k / 2] + r[k / 2 + 1]) / 2
				mq = (k % 2) ? q[(k + 1) / 2] : (q[k / 2] + q[k / 2 + 1]) / 2
				mc = (k % 2) ? c[(k + 1) / 2] : (c[k / 2] + c[k / 2 + 1]) / 2
				printf "| %s | %s | %.0f | %.1f | %s | %.2fx |\n", f, s, mq, mc, list, mr
			}' "$results"
	done
done

if [ -n "${PROFILE:-}" ]; then
	# The real ferry serve, built with the benchmark-only profiling hook
	# (cmd/ferry/benchprofile.go, -tags ferry_benchprofile): the profile
	# covers the process from start to SIGTERM, wrk runs in between.
	mkdir -p "$PROFILE"
	(cd "$src" && go build -tags ferry_benchprofile -o "$work/ferry-prof" ./cmd/ferry)
	for file in timestamp target; do
		p=/metadata/timestamp.json
		[ $file = target ] && p=/$target
		export FERRY_BENCH_CPUPROFILE="$PROFILE/$file.out"
		start_ferry ./ferry-prof
		unset FERRY_BENCH_CPUPROFILE
		set -- $(wrk_run "$furl$p" "$fsrv")
		stop_ferry
		(cd "$src" && go tool pprof -top -cum -nodecount 60 "$work/ferry-prof" "$PROFILE/$file.out" > "$PROFILE/$file.txt" 2>/dev/null)
		echo "# profile of ferry serve, $file, under wrk ($1 req/s while profiling): $PROFILE/$file.out, top: $PROFILE/$file.txt"
	done
	cp "$work/ferry-prof" "$PROFILE/ferry-prof"
fi
