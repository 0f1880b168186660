#!/usr/bin/env python3
"""The attacks on the web console that bench/console-attack.sh measures, as a hostile client
makes them (standard library only, every client on loopback from an address of its own in
127/8). Each phase prints one line of `key value` figures.

  console_attack.py logins URL N          N concurrent wrong logins, one address each
  console_attack.py burst URL N           N parallel wrong logins for one account, one address
  console_attack.py slow URL N [--tls]    N connections that never finish their headers; a real
                                          login meanwhile; seconds until the console closed all
"""

import asyncio
import re
import ssl
import sys
import time
import urllib.parse

PASSWORD = "bench console password"


def target(url):
    u = urllib.parse.urlparse(url)
    return u.hostname, u.port, u.scheme == "https"


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def connect(url, source):
    host, port, tls = target(url)
    return await asyncio.open_connection(
        host, port, local_addr=(source, 0), ssl=tls_context() if tls else None
    )


async def exchange(url, source, request):
    """Sends `request`, reads the answer to its end; returns (status, body text)."""
    reader, writer = await connect(url, source)
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head = answer.split(b"\r\n", 1)[0].split()
    return (int(head[1]) if len(head) > 1 else 0), answer.decode("latin-1")


async def form_token(url):
    """The login form's token (consoles without one give an empty token)."""
    _, page = await exchange(
        url, "127.0.0.1", b"GET /login HTTP/1.1\r\nHost: console\r\nConnection: close\r\n\r\n"
    )
    m = re.search(r'name="token" value="([0-9a-f]+)"', page)
    return m.group(1) if m else ""


def login_request(name, password, token):
    body = urllib.parse.urlencode({"name": name, "password": password, "token": token}).encode()
    return (
        b"POST /login HTTP/1.1\r\nHost: console\r\nConnection: close\r\n"
        + f"Cookie: pcap_login={token}\r\n".encode()
        + b"Content-Type: application/x-www-form-urlencoded\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


def counts(statuses):
    out = {}
    for s in statuses:
        out[s] = out.get(s, 0) + 1
    return " ".join(f"status_{k} {v}" for k, v in sorted(out.items()))


async def logins(url, n):
    token = await form_token(url)
    start = time.monotonic()
    statuses = await asyncio.gather(
        *(
            exchange(url, f"127.0.1.{1 + i % 250}" if i >= 250 else f"127.0.0.{10 + i}",
                     login_request(f"user{i}", "a wrong guess", token))
            for i in range(n)
        )
    )
    took = time.monotonic() - start
    print(f"logins {n} seconds {took:.2f} {counts(s for s, _ in statuses)}")


async def burst(url, n):
    token = await form_token(url)
    statuses = await asyncio.gather(
        *(exchange(url, "127.0.0.66", login_request("alice", "a wrong guess", token)) for _ in range(n))
    )
    print(f"burst {n} {counts(s for s, _ in statuses)}")


async def slow(url, n):
    token = await form_token(url)
    held = []
    for i in range(n):
        try:
            reader, writer = await connect(url, f"127.0.0.{2 + i % 2}")
            writer.write(b"POST /login HTTP/1.1\r\nHost: console\r\n")
            await writer.drain()
            held.append((reader, writer))
        except OSError:
            pass
    opened = time.monotonic()
    status, _ = await exchange(url, "127.0.0.1", login_request("alice", PASSWORD, token))
    real = time.monotonic() - opened

    async def until_closed(reader):
        """Seconds until the console closed the connection, None if it did not in 120 s."""
        try:
            while await asyncio.wait_for(reader.read(256), timeout=120):
                pass
        except asyncio.TimeoutError:
            return None
        except (OSError, ssl.SSLError):
            pass
        return time.monotonic() - opened

    closed = await asyncio.gather(*(until_closed(r) for r, _ in held))
    done = [c for c in closed if c is not None]
    print(
        f"slow {len(held)} real_login_status {status} real_login_seconds {real:.3f} "
        f"closed {len(done)} first_closed_after_s {min(done, default=0):.2f} "
        f"all_closed_after_s {max(done, default=0):.2f} still_open_after_120s {len(closed) - len(done)}"
    )


def main():
    phase, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    asyncio.run({"logins": logins, "burst": burst, "slow": slow}[phase](url, n))


if __name__ == "__main__":
    main()
