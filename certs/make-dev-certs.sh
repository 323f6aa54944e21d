#!/usr/bin/env bash
# Development certificates ONLY: a throwaway CA, a server certificate for localhost, 127.0.0.1
# and ::1, and client certificates for a few cars (CN = the car's client id). The private keys
# are unencrypted and stay on this machine (certs/*.key is git-ignored). Never use them in
# production: anyone with this script can make certificates your broker would trust.
#   certs/make-dev-certs.sh [DIR]      (default: the folder of this script; skips if present)
set -euo pipefail
dir="${1:-$(cd "$(dirname "$0")" && pwd)}"
mkdir -p "$dir"
cd "$dir"
if [ -f ca.crt ] && [ -f server.crt ] && [ -f server.key ]; then
    exit 0
fi
days=825
subj="/O=Turnpike development"

openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout ca.key -out ca.crt \
    -subj "$subj/CN=Turnpike Dev CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

issue() { # name cn extensions...
    local name=$1 cn=$2
    shift 2
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "$subj/CN=$cn" 2>/dev/null
    printf '%s\n' "$@" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
        -extfile "$name.ext" -out "$name.crt" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

issue server localhost "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    "extendedKeyUsage=serverAuth" "keyUsage=critical,digitalSignature,keyEncipherment"
for car in car-1 car-2 car-3; do
    issue "$car" "$car" "extendedKeyUsage=clientAuth" "keyUsage=critical,digitalSignature,keyEncipherment"
done
chmod 600 ./*.key
echo "development certificates written to $dir (for development only)"
