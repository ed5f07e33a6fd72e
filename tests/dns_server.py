"""
A small authoritative DNS server for the relay tests and the relay
benchmark, with dnslib (Debian's python3-dnslib), on loopback UDP and TCP.

Zones are a dict kept in memory that the test may change while the server
runs: add(name, type, value), servfail(name), remove(name). A name with no
record of the asked type answers NOERROR with no answer (NODATA); an
unknown name answers NXDOMAIN. Every query is counted (queries) so that a
test can see what was asked.

    dns = DNSServer()            # a free port on 127.0.0.1
    dns.add("truc.fr", "MX", "mx.truc.fr", pref=10)
    dns.add("mx.truc.fr", "A", "127.0.0.2")
    dns.start(); ...; dns.stop()

As a program (for bench/relay):
    python3 tests/dns_server.py --port 5353 \\
        --mx machin.com=mx.machin.com:127.0.0.3 --mx truc.fr=mx.truc.fr:127.0.0.2
"""
import argparse
import collections
import signal
import socket
import threading
import time

from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer as _Server


def _norm(name):
    return str(name).rstrip(".").lower()


class _Resolver(BaseResolver):
    def __init__(self, owner):
        self.owner = owner

    def resolve(self, request, handler):
        reply = request.reply()
        q = request.q
        name = _norm(q.qname)
        qtype = QTYPE[q.qtype]
        with self.owner.lock:
            self.owner.queries[(name, qtype)] += 1
            if name in self.owner.failing:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            records = list(self.owner.zones.get(name, ()))
        if not records:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rtype, value, pref in records:
            if rtype != qtype:
                continue
            if rtype == "A":
                rdata = A(value)
            elif rtype == "AAAA":
                rdata = AAAA(value)
            elif rtype == "MX":
                rdata = MX(DNSLabel(value if value != "." else ""), pref)
            else:
                continue
            reply.add_answer(RR(q.qname, QTYPE.reverse[rtype], rdata=rdata,
                                ttl=60))
        return reply


class _QuietLogger(DNSLogger):
    def __init__(self):
        super().__init__(log="-request,-reply,-truncated,-error,-recv,"
                         "-send,-data", prefix=False)


class DNSServer:
    def __init__(self, host="127.0.0.1", port=0):
        self.host = host
        self.lock = threading.Lock()
        self.zones = {}
        self.failing = set()
        self.queries = collections.Counter()
        if port == 0:
            port = self._free_port(host)
        self.port = port
        resolver = _Resolver(self)
        self._udp = _Server(resolver, port=port, address=host,
                            logger=_QuietLogger())
        self._tcp = _Server(resolver, port=port, address=host, tcp=True,
                            logger=_QuietLogger())

    @staticmethod
    def _free_port(host):
        # a port free for both UDP and TCP
        for _ in range(50):
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind((host, 0))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind((host, port))
                return port
            except OSError:
                continue
            finally:
                u.close()
                t.close()
        raise RuntimeError("no free port for the DNS server")

    @property
    def address(self):
        """What facteur's dns_resolver takes."""
        return f"{self.host}:{self.port}"

    def add(self, name, rtype, value, pref=10):
        with self.lock:
            self.zones.setdefault(_norm(name), []).append(
                (rtype.upper(), value, pref))

    def add_mx(self, domain, exchanger, address, pref=10):
        self.add(domain, "MX", exchanger, pref)
        if address is not None:
            self.add(exchanger, "A", address)

    def remove(self, name):
        with self.lock:
            self.zones.pop(_norm(name), None)

    def servfail(self, name, on=True):
        with self.lock:
            if on:
                self.failing.add(_norm(name))
            else:
                self.failing.discard(_norm(name))

    def start(self):
        self._udp.start_thread()
        self._tcp.start_thread()
        return self

    def stop(self):
        for s in (self._udp, self._tcp):
            try:
                s.stop()
                s.server.server_close()
            except Exception:
                pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--mx", action="append", default=[],
                    metavar="DOMAIN=EXCHANGER:ADDRESS")
    args = ap.parse_args()
    dns = DNSServer(args.host, args.port)
    for item in args.mx:
        domain, _, rest = item.partition("=")
        exchanger, _, address = rest.partition(":")
        dns.add_mx(domain, exchanger, address)
    dns.start()
    print(f"dns listening on {dns.address}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    while not stop.is_set():
        time.sleep(0.2)
    dns.stop()


if __name__ == "__main__":
    main()
