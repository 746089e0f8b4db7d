#!/bin/sh
# Times ferry release publish of a small file: remote (--server, the CI
# path: one application key, signed here, uploaded to ferry serve over
# HTTPS on 127.0.0.1) and local (--repo). Keys use the default scrypt work
# factor, as in production. Usage: sh bench/publish/run.sh [REPS]
set -eu
reps=${1:-5}
work=$(mktemp -d)
trap 'kill $srv 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/ferry" ./cmd/ferry
cd "$work"
export FERRY_PASSPHRASE=bench-passphrase
plat=$(go env GOOS)/$(go env GOARCH)
./ferry init repo --offline-keys offline >/dev/null 2>&1
./ferry key generate --out hello.key >/dev/null 2>&1
printf 'v0' > f
./ferry release publish --repo repo --offline-keys offline --app-key hello.key --app hello --version 0.0.1 --platform "$plat" f >/dev/null
./ferry token create --repo repo --app hello | tail -n 1 > hello.token
./ferry serve --repo repo --addr 127.0.0.1:0 --self-signed ca.pem --addr-file url.txt >/dev/null 2>serve.log &
srv=$!
while [ ! -s url.txt ]; do sleep 0.05; done
url=$(cat url.txt)
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
remote=""; local_=""
i=1
while [ $i -le $((reps + 1)) ]; do
	printf 'remote %d' $i > f
	t=$(date +%s%N)
	./ferry release publish --server "$url" --ca ca.pem --token-file hello.token --app-key hello.key \
		--app hello --version 1.0.$i --platform "$plat" f >/dev/null
	# The first upload also decrypts the server's snapshot and timestamp keys (once per serve process).
	[ $i -gt 1 ] && remote="$remote $(ms $t)"
	printf 'local %d' $i > f
	t=$(date +%s%N)
	./ferry release publish --repo repo --app-key hello.key --app hello --version 2.0.$i --platform "$plat" f >/dev/null
	[ $i -gt 1 ] && local_="$local_ $(ms $t)"
	i=$((i + 1))
done
median() { echo "$@" | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "remote publish (--server), ms:$remote; median $(median $remote)"
echo "local publish (--repo), ms:$local_; median $(median $local_)"
