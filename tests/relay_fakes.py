"""
FakeSMTP: a small SMTP server for the relay tests, to play far ends that
facteur must cope with: one that answers 4xx before it accepts, one without
STARTTLS, one that refuses STARTTLS, a smarthost that wants AUTH. It
records every command line and every transaction it accepted.

    fake = FakeSMTP("127.0.0.6", port, starttls=True,
                    rcpt_reply=lambda n, rcpt: "451 4.3.0 later" if n == 0
                    else None).start()
    ...
    fake.transactions  # [{"from": ..., "rcpts": [...], "data": b"...",
                       #   "tls": bool, "auth": user or None}]

data_delay=N makes it take N seconds between the end of the data (the
message counted as taken) and its 250, as a slow far end does.

Only the standard library; one thread per connection.
"""
import base64
import re
import socket
import ssl
import threading
import time


class FakeSMTP:
    def __init__(self, host, port, *, tls_pair=None, starttls=True,
                 starttls_reply=None, auth=None, exts=None, dsn=False,
                 rcpt_reply=None, data_reply=None, data_delay=0,
                 name="fake.test"):
        self.host, self.port = host, port
        self.tls_pair = tls_pair
        self.starttls = starttls and tls_pair is not None
        self.starttls_reply = starttls_reply
        self.auth = auth or {}
        self.exts = exts if exts is not None else [
            "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE 10000000"]
        if dsn:
            self.exts.append("DSN")
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        # seconds between the end of the data (the message taken) and
        # the reply; data_seen is set when the data has arrived
        self.data_delay = data_delay
        self.data_seen = threading.Event()
        self.name = name
        self.lock = threading.Lock()
        self.lines = []          # every command line received
        self.transactions = []   # accepted ones
        self.attempts = 0        # MAIL commands seen
        self.connections = 0
        self.active = 0          # sessions open now
        self.max_active = 0      # most sessions open at once
        self.peers = []          # client addresses
        self.helos = []          # EHLO/HELO arguments
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self._stop = False
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _serve(self):
        while not self._stop:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.active += 1
                self.max_active = max(self.max_active, self.active)
                self.peers.append(peer[0])
            threading.Thread(target=self._session, args=(conn,),
                             daemon=True).start()

    # ------------------------------------------------------------ session
    def _session(self, conn):
        conn.settimeout(30)
        s = _Stream(conn)
        state = {"tls": False, "auth": None, "txn": None}
        try:
            s.send(f"220 {self.name} ESMTP fake")
            while True:
                line = s.readline()
                if line is None:
                    return
                text = line.decode("utf-8", "replace")
                with self.lock:
                    self.lines.append(text)
                verb = text.split(" ", 1)[0].upper()
                arg = text[len(verb):].strip()
                if verb in ("EHLO", "HELO"):
                    with self.lock:
                        self.helos.append(arg)
                    self._ehlo(s, state, verb)
                elif verb == "STARTTLS":
                    if not self.starttls:
                        s.send("502 5.5.1 unknown command")
                    elif self.starttls_reply:
                        s.send(self.starttls_reply)
                    else:
                        s.send("220 2.0.0 go ahead")
                        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                        ctx.load_cert_chain(str(self.tls_pair[0]),
                                            str(self.tls_pair[1]))
                        s.wrap(ctx)
                        state = {"tls": True, "auth": None, "txn": None}
                elif verb == "AUTH":
                    self._auth(s, state, arg)
                elif verb == "MAIL":
                    with self.lock:
                        self.attempts += 1
                    if self.auth and state["auth"] is None:
                        s.send("530 5.7.0 Authentication required")
                        continue
                    m = re.match(r"(?i)FROM:<([^>]*)>(.*)", arg)
                    state["txn"] = {"from": m.group(1), "params":
                                    m.group(2).strip(), "rcpts": [],
                                    "rcpt_params": [], "tls": state["tls"],
                                    "auth": state["auth"]}
                    s.send("250 2.1.0 ok")
                elif verb == "RCPT":
                    txn = state["txn"]
                    m = re.match(r"(?i)TO:<([^>]*)>(.*)", arg)
                    if txn is None or not m:
                        s.send("503 5.5.1 need MAIL")
                        continue
                    reply = None
                    if self.rcpt_reply is not None:
                        with self.lock:
                            n = len(self.transactions)
                        reply = self.rcpt_reply(n, m.group(1))
                    if reply:
                        s.send(reply)
                        continue
                    txn["rcpts"].append(m.group(1))
                    txn["rcpt_params"].append(m.group(2).strip())
                    s.send("250 2.1.5 ok")
                elif verb == "BDAT":
                    txn = state["txn"]
                    n = int(arg.split()[0])
                    data = s.read_bytes(n)
                    if txn is None or not txn["rcpts"] or data is None:
                        s.send("554 5.5.1 no valid recipients")
                        continue
                    txn["data"] = data
                    txn["bdat"] = True
                    with self.lock:
                        self.transactions.append(txn)
                    state["txn"] = None
                    s.send("250 2.0.0 ok: queued")
                elif verb == "DATA":
                    txn = state["txn"]
                    if txn is None or not txn["rcpts"]:
                        s.send("554 5.5.1 no valid recipients")
                        continue
                    s.send("354 go ahead")
                    data = s.read_data()
                    if data is None:
                        return
                    reply = self.data_reply(txn) if self.data_reply \
                        else None
                    if reply:
                        s.send(reply)
                    else:
                        txn["data"] = data
                        with self.lock:
                            self.transactions.append(txn)
                        self.data_seen.set()
                        if self.data_delay:
                            time.sleep(self.data_delay)
                        s.send("250 2.0.0 ok: queued")
                    state["txn"] = None
                elif verb == "RSET":
                    state["txn"] = None
                    s.send("250 2.0.0 ok")
                elif verb == "NOOP":
                    s.send("250 2.0.0 ok")
                elif verb == "QUIT":
                    s.send("221 2.0.0 bye")
                    return
                else:
                    s.send("500 5.5.2 what?")
        except (OSError, ssl.SSLError):
            return
        finally:
            with self.lock:
                self.active -= 1
            try:
                conn.close()
            except OSError:
                pass

    def _ehlo(self, s, state, verb):
        if verb == "HELO":
            s.send(f"250 {self.name}")
            return
        exts = list(self.exts)
        if self.starttls and not state["tls"]:
            exts.append("STARTTLS")
        if self.auth and state["tls"]:
            exts.append("AUTH PLAIN LOGIN")
        lines = [self.name] + exts
        for i, ln in enumerate(lines):
            s.send(f"250{'-' if i + 1 < len(lines) else ' '}{ln}")

    def _auth(self, s, state, arg):
        parts = arg.split()
        if not self.auth or not state["tls"] or not parts:
            s.send("503 5.5.1 no AUTH here")
            return
        if parts[0].upper() == "PLAIN":
            token = parts[1] if len(parts) > 1 else None
            if token is None:
                s.send("334 ")
                token = s.readline().decode()
            raw = base64.b64decode(token).split(b"\0")
            user, password = raw[1].decode(), raw[2].decode()
        elif parts[0].upper() == "LOGIN":
            s.send("334 VXNlcm5hbWU6")
            user = base64.b64decode(s.readline()).decode()
            s.send("334 UGFzc3dvcmQ6")
            password = base64.b64decode(s.readline()).decode()
        else:
            s.send("504 5.5.4 mechanism?")
            return
        if self.auth.get(user) == password:
            state["auth"] = user
            s.send("235 2.7.0 ok")
        else:
            s.send("535 5.7.8 bad credentials")


class _Stream:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def wrap(self, ctx):
        self.buf = b""
        self.sock = ctx.wrap_socket(self.sock, server_side=True)

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def readline(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_bytes(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_data(self):
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        full = b"\r\n" + self.buf
        i = full.index(b"\r\n.\r\n")
        data = full[2:i + 2]
        self.buf = full[i + 5:]
        return re.sub(rb"(?m)^\.", b"", data)
