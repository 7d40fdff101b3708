# Shell helpers for the packaging tests that start devscope over HTTPS. Sourced, not run.

# make_certificate KEY CRT: a self-signed P-256 certificate for a day.
make_certificate() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=devscope \
    -keyout "$1" -out "$2" >/dev/null 2>&1
}

# logged_https_port LOG: the port of devscope's "url=https://127.0.0.1:PORT" log line, waiting up
# to 10 s for it; empty when it never came.
logged_https_port() {
  local port=""
  for _ in $(seq 100); do
    port=$(grep -o 'url=https://127.0.0.1:[0-9]*' "$1" | head -n1 | sed 's/.*://' || true)
    [[ -n $port ]] && break
    sleep 0.1
  done
  echo "$port"
}

# https_get PORT CAFILE PATH: the raw response to GET PATH, the server verified against CAFILE.
https_get() {
  printf 'GET %s HTTP/1.0\r\n\r\n' "$3" |
    timeout 5 openssl s_client -connect "127.0.0.1:$1" -CAfile "$2" -verify_return_error -quiet 2>/dev/null
}
