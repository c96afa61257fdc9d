#!/bin/sh
# Regenerates the openssl-made seeds of the csr, ocsp and ocsp_get targets (issue 15: seed
# corpora from real traffic). A csr seed is one selector byte (order index, see
# cobble_fuzz::ca::ORDERS; profile in bits 4-5) followed by the CSR DER.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
c=corpus/csr
mkdir -p "$c" corpus/ocsp corpus/ocsp_get

csr() { # name selector keyopts subj san
    openssl req -new -newkey "$3" -nodes -keyout "$tmp/k" -subj "$4" \
        -addext "subjectAltName=$5" -outform DER -out "$tmp/r" 2>/dev/null
    { printf "\\$(printf %o "$2")"; cat "$tmp/r"; } > "$c/$1.bin"
}
csr rsa2048-one-name 0 rsa:2048 "/CN=example.com" "DNS:example.com"
openssl ecparam -name secp384r1 > "$tmp/p384"
openssl ecparam -name prime256v1 > "$tmp/p256"
csr ec256-two-names 1 "ec:$tmp/p256" "/O=Fuzz" "DNS:www.example.com,DNS:Example.com"
csr ec384-wildcard-shortlived 18 "ec:$tmp/p384" "/O=Fuzz" "DNS:*.example.com"
csr ec256-ip-cn 3 "ec:$tmp/p256" "/CN=192.0.2.1" "IP:192.0.2.1,DNS:example.com"
csr ec256-ipv6-certigna 37 "ec:$tmp/p256" "/O=Fuzz" "IP:2001:db8::1"
csr ed25519-refused 0 ed25519 "/O=Fuzz" "DNS:example.com"

# OCSP requests for serial 0x1234 of a throwaway issuer: SHA-1 with nonce, SHA-256 without.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tmp/ik" \
    -subj "/CN=Fuzz Issuer" -days 1 -out "$tmp/issuer.pem" 2>/dev/null
openssl ocsp -issuer "$tmp/issuer.pem" -serial 0x1234 -reqout corpus/ocsp/sha1-nonce.der 2>/dev/null
openssl ocsp -issuer "$tmp/issuer.pem" -sha256 -serial 0x00ff0001 -no_nonce \
    -reqout corpus/ocsp/sha256.der 2>/dev/null
openssl ocsp -issuer "$tmp/issuer.pem" -sha384 -serial 1 -serial 2 \
    -reqout corpus/ocsp/two-sha384.der 2>/dev/null

# The GET form (RFC 6960 Appendix A.1): base64, then URL-encoded.
base64 -w0 corpus/ocsp/sha1-nonce.der > corpus/ocsp_get/sha1-nonce.txt
base64 -w0 corpus/ocsp/sha256.der | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g' > corpus/ocsp_get/sha256-escaped.txt
base64 -w0 corpus/ocsp/two-sha384.der | tr '+/' '-_' | tr -d '=' > corpus/ocsp_get/two-urlsafe.txt
