#!/usr/bin/env python3
"""A confab protocol v1 client and conformance driver in one file, Python 3.11 standard library only:
a minimal WebSocket client (RFC 6455, ws://), the JSON encoding (confab.v1.json), and a client that
logs in, resumes from its positions, pings, reconnects with backoff and resends what was not
acknowledged, driven as conformance/driver-contract.md says. Requirement ids (RESUME-11, IDEM-5)
are those of protocol/PROTOCOL.md. Run it with

    confab-conformance client --exec "python3 conformance/examples/python/driver.py" --transport ws --encoding json
"""

import base64, hashlib, json, os, random, re, socket, struct, sys, threading, time, urllib.parse, uuid

# The cases this driver plays; for any other case id it exits 127 (unsupported).
SUPPORTED = {
    "hello/first-frame", "close/client-closes", "enc/unknown-fields", "enc/json-variants",
    "enc/unknown-enum-values", "enc/unknown-push-and-reply", "log/unknown-event-kind", "log/order-and-duplicates",
    "live/pings-when-quiet", "live/silent-server", "errors/temporary-retry", "close/reconnect-range",
    "close/stop-range", "close/transport-code-decides", "close/backoff", "auth/expired-token", "auth/stored-tokens",
    "idem/resend-after-drop", "idem/resend-several-in-order", "frame/reply-order", "resume/dropped-mid-stream",
    "resume/gap", "resume/reset", "resume/epoch-change", "resume/gone", "resume/live-before-result",
    "resume/slow-consumer", "resume/invitation-is-no-position", "limit/frame-size", "ws/fragmented-messages",
    "frame/malformed-from-server",
}
ENV = os.environ
TICK = 0.05  # seconds between looks at the clock (pings, retries, idle timeout)
OUT = threading.Lock()


def emit(line):
    """One contract line on stdout. Tokens never go to stdout or stderr (AUTH-2)."""
    with OUT:
        print(json.dumps(line), flush=True)


def log(message):
    print(f"driver.py: {message}", file=sys.stderr, flush=True)


# ---- WebSocket (RFC 6455), client side ---------------------------------------------------------

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class Lost(Exception):
    """The connection ended. Lost(code, reason): code is the WebSocket close status, or None."""


class WebSocket:
    def __init__(self, url, subprotocol):
        url = urllib.parse.urlsplit(url)
        if url.scheme != "ws":
            raise ConnectionError(f"not a ws:// URL: {url.geturl()}")
        host, port, path = url.hostname, url.port or 80, url.path or "/"
        self.sock = socket.create_connection((host, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                          f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n".encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed during the WebSocket handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)  # anything after the headers is frames already
        status, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}
        accept = base64.b64encode(hashlib.sha1(f"{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11".encode()).digest())
        if status.split()[1:2] != ["101"] or headers.get("sec-websocket-accept") != accept.decode():
            raise ConnectionError(f"the WebSocket upgrade failed: {status}")
        if headers.get("sec-websocket-protocol") != subprotocol:  # WS-2: the server chose another encoding
            raise ConnectionError(f"the server chose subprotocol {headers.get('sec-websocket-protocol')!r}")
        self.sock.settimeout(TICK)
        self.opcode, self.fragments = None, []

    def send(self, opcode, payload):
        """One whole frame (FIN set), masked as every client frame must be."""
        n, mask = len(payload), os.urandom(4)
        # The "masked" bit and a 7-bit length, or 126 and a 16-bit length, or 127 and a 64-bit one.
        size = struct.pack("!B", 0x80 | n) if n < 126 else struct.pack("!BH", 0x80 | 126, n) if n < 1 << 16 \
            else struct.pack("!BQ", 0x80 | 127, n)
        self.sock.sendall(struct.pack("!B", 0x80 | opcode) + size + mask + xor(payload, mask))

    def poll(self, on_message):
        """Reads what arrives within a tick; calls on_message(opcode, payload) for each whole message."""
        try:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Lost(None, "the connection was lost")
            self.buf += chunk
        except TimeoutError:
            pass
        while frame := self._next_frame():
            fin, opcode, payload = frame
            if opcode == PING:
                self.send(PONG, payload)  # answered, but no sign of life (WS-6, LIVE-2)
            elif opcode == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self.send(CLOSE, payload[:2])  # echo the status code, then close (RFC 6455 §5.5.1)
                except OSError:
                    pass
                self.sock.close()
                raise Lost(code, payload[2:].decode("utf-8", "replace") or "closed")
            elif opcode in (TEXT, BINARY, CONT):  # a message may come in fragments (WS-5)
                if opcode != CONT:
                    self.opcode, self.fragments = opcode, []
                self.fragments.append(payload)
                if fin:
                    on_message(self.opcode, b"".join(self.fragments))

    def _next_frame(self):
        """(fin, opcode, payload) of the first whole frame in the buffer, or None."""
        b = self.buf
        if len(b) < 2:
            return None
        masked, n, at = b[1] & 0x80, b[1] & 0x7F, 2
        if n >= 126:  # a 16- or 64-bit extended payload length follows
            at = 4 if n == 126 else 10
            if len(b) < at:
                return None
            n = int.from_bytes(b[2:at], "big")
        mask, at = (b[at:at + 4], at + 4) if masked else (None, at)  # servers do not mask; tolerate it
        if len(b) < at + n:
            return None
        payload, self.buf = b[at:at + n], b[at + n:]
        return b[0] >> 7, b[0] & 0x0F, xor(payload, mask) if mask else payload

    def close(self, code=1000):
        """Ends politely: a close frame, then a short wait for the server's before closing TCP."""
        try:
            self.send(CLOSE, struct.pack("!H", code))
            self.sock.settimeout(1)
            while self.sock.recv(4096):
                pass
        except OSError:
            pass
        self.sock.close()


def xor(data, mask):
    """data XOR the 4-byte mask repeated (RFC 6455 §5.3), on big integers: fast in pure Python."""
    n = len(data)
    return (int.from_bytes(data, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")


# ---- JSON frames (§3.2) ------------------------------------------------------------------------
# We write canonical proto3 JSON (ENC-4) and read what ENC-5 allows besides: proto field names as
# keys (we turn every key into snake_case), 64-bit numbers as strings or numbers, enums as names or
# numbers, null for an absent message, keys we do not know. A value of the wrong type makes the
# whole frame undecodable (ValueError, whose message never quotes the value: it could be a token).

ERROR_CODES = {
    0: "ERROR_CODE_UNSPECIFIED", 1: "BAD_FRAME", 2: "UNKNOWN_COMMAND", 3: "WRONG_STATE", 4: "INVALID_ARGUMENT",
    5: "MESSAGE_TOO_LONG", 6: "RATE_LIMITED", 7: "INTERNAL", 8: "UNAVAILABLE", 20: "INVALID_CREDENTIALS",
    21: "TOKEN_EXPIRED", 22: "TOKEN_INVALID", 23: "TOKEN_REUSED", 24: "REGISTRATION_CLOSED", 25: "GUESTS_DISABLED",
    26: "NAME_TAKEN", 27: "ACCOUNT_DISABLED", 40: "ROOM_NOT_FOUND", 41: "USER_NOT_FOUND", 42: "NOT_A_MEMBER",
    43: "FORBIDDEN", 44: "ALREADY_MEMBER", 45: "TXN_CONFLICT",
}
OUTCOMES = {"LIVE": 0, "REPLAYED": 1, "RESET": 2, "GONE": 3}  # ResumeOutcome
REPLIES = ("error", "welcome", "pong", "auth", "done", "room", "rooms", "members", "sent", "history", "resumed")
KINDS = ("room_created", "member_joined", "member_left", "member_invited", "message")


def snake(value):
    """Turns lowerCamelCase keys into the proto field names, so that we accept both (ENC-5)."""
    if isinstance(value, dict):
        return {re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), k): snake(v) for k, v in value.items()}
    return [snake(v) for v in value] if isinstance(value, list) else value


def num(value):
    """An integer field: a JSON number, a string of digits, or absent (0)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise ValueError(f"a {type(value).__name__} where an integer belongs")
    return int(value)


def text(value):
    if value is not None and not isinstance(value, str):
        raise ValueError(f"a {type(value).__name__} where a string belongs")
    return value or ""


def obj(value):
    """A message field: an object, or absent or null, its default (ENC-5)."""
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"a {type(value).__name__} where an object belongs")
    return value or {}


def enum(value, names):
    """An enum by name or number; one we do not know reads as the zero value (ENC-5, ENC-7)."""
    return names.get(value, 0) if isinstance(value, str) else num(value)


def error_code(error):
    """The name of an Error's code; an unknown one is ERROR_CODE_UNSPECIFIED (ERR-5)."""
    return ERROR_CODES.get(enum(error.get("code"), {v: k for k, v in ERROR_CODES.items()}), ERROR_CODES[0])


def compact(fields):
    """Canonical JSON leaves out fields holding their default value (ENC-4)."""
    return {k: v for k, v in fields.items() if v not in (None, "", 0, "0", [])}


def digits(message, *names):
    """64-bit fields as the contract prints them: strings of digits."""
    return {name: str(num(message.get(name))) for name in names}


def parse_event(e):
    """A RoomEvent as the contract prints it, and the user id of its invitee if any. Decoded whole
    before anything is applied. An event of a kind we do not know is of kind "unknown" (LOG-5)."""
    e = obj(e)
    kind = next((k for k in KINDS if e.get(k) is not None), "unknown")
    body = obj(e.get(kind))
    return ({**digits(e, "room_id", "epoch", "seq"), "sender": text(obj(e.get("sender")).get("name")),
             "kind": kind, "text": text(body.get("text")) if kind == "message" else ""},
            num(obj(body.get("invitee")).get("user_id")))


def error_line(command_id, message, code=None, close_code=None):
    return {"type": "error", "id": command_id, "message": message,
            **({"code": code} if code else {}), **({"close_code": close_code} if close_code else {})}


# ---- The client ----------------------------------------------------------------------------------


class Refused(Exception):
    """Logging in failed, the password included: nothing to retry."""


class Client:
    """A session thread owns the socket and the protocol state. The stdin thread only appends
    commands to the outbox (under the lock); the session thread sends them when it can."""

    def __init__(self, connect_id):
        self.connect_id = connect_id  # answered once the first connection has logged in
        self.lock = threading.Lock()
        self.wake = threading.Event()  # cuts a backoff short when we are told to stop
        self.stopping = False  # disconnect or quit was asked
        self.stopped = None  # (message, close code) once the session has ended for good
        self.outbox = []  # commands awaiting their outcome, oldest first (IDEM-5)
        self.positions = {}  # room id -> (epoch, seq) of the last event seen there (RESUME-11)
        self.next_id = 0  # request ids: a counter, never reused (FRAME-2)
        self.attempt, self.me, self.ws = 0, 0, None
        self.token_file = os.path.join(ENV["CONFAB_STATE_DIR"], "tokens.json")  # kept between runs
        try:
            with open(self.token_file) as f:
                self.tokens = json.load(f)
        except (OSError, ValueError):
            self.tokens = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def submit(self, command_id, cmd, key, body):
        with self.lock:
            if self.stopped:
                return emit(error_line(command_id, self.stopped[0], close_code=self.stopped[1]))
            self.outbox.append({"id": command_id, "cmd": cmd, "key": key, "body": body, "rid": None, "due": 0})

    def close(self):
        self.stopping = True
        self.wake.set()
        self.thread.join(timeout=4)

    # -- everything below runs on the session thread --

    def _run(self):
        while True:
            code, final = None, False
            try:
                self._session()
            except Lost as lost:
                code, reason = lost.args
            except OSError as e:  # refused, reset, timed out: lost without a close code
                reason = str(e) or type(e).__name__
            except Refused as e:
                reason, final = str(e), True
            except Exception as e:  # a bug in this client: stop, rather than leave commands unanswered
                reason, final = f"internal error: {e!r}", True
            if self.ws and (self.stopping or final):
                self.ws.close(1000)  # a client ends a session with status 1000 (CLOSE-4, WS-7)
            elif self.ws:
                self.ws.sock.close()
            if self.stopping:  # disconnect or quit: stay down
                return self._end("the client was disconnected", None)
            log(f"connection ended: {reason} (close code {code})")
            first = self.connect_id is not None  # the first connection never got going: no retries
            # CLOSE-2, CLOSE-3: 4500-4999, known or not, means stop; any other code, or none, reconnect.
            final = final or first or code is not None and 4500 <= code <= 4999
            if not first:
                emit({"type": "closed", "code": code, "reconnecting": not final})
            if final:
                return self._end(reason, code)
            # Exponential backoff with jitter (CLOSE-2's example): from 1 s, doubling up to 60 s,
            # each between half and all of it.
            self.attempt += 1
            if self.wake.wait(min(2 ** (self.attempt - 1), 60) * random.uniform(0.5, 1)):
                return self._end("the client was disconnected", None)

    def _end(self, message, code):
        with self.lock:
            self.stopped, failed, self.outbox = (message, code), self.outbox, []
        for command_id in ([] if self.connect_id is None else [self.connect_id]) + [e["id"] for e in failed]:
            emit(error_line(command_id, message, close_code=code))

    def _session(self):
        """One connection: Hello, log in, Resume, then read and keep it up until it ends."""
        self.ws = None  # until the upgrade succeeds: a failed attempt has nothing to close
        self.ws = WebSocket(ENV["CONFAB_URL"], "confab.v1.json")
        self.pending, self.resumed, self.resuming = {}, False, False
        self.last_in = self.last_out = time.monotonic()
        self.ping_s, self.idle_s, self.limit = None, 10.0, 16384  # until Welcome says
        with self.lock:
            for entry in self.outbox:
                entry["rid"] = None  # not answered on the last connection: send it again (IDEM-5)
        key, welcome = self._call("hello", {"versions": [1], "featureLevel": 1, "capabilities": ["resume"],
                                            "clientName": "confab-python-example/1"})
        while key != "welcome":  # HELLO-2: a Close follows, and decides
            self._pump()
        # HELLO-5: obey the intervals and limits the server states (LIVE-1, LIVE-4, LIMIT-1).
        self.ping_s = num(welcome.get("ping_interval_ms")) / 1000 or 20.0
        self.idle_s = num(welcome.get("idle_timeout_ms")) / 1000 or 60.0
        limits = obj(welcome.get("limits"))
        self.limit = num(limits.get("max_frame_bytes_unauthenticated")) or 16384
        self._log_in()
        self.limit = num(limits.get("max_frame_bytes")) or 262144
        if self.connect_id is not None:
            emit({"type": "connected", "id": self.connect_id})
            self.connect_id = None
            self._resume()
        else:
            self._resume(announce=num(welcome.get("session_id")))
        self.resumed, self.attempt = True, 0  # the outbox goes out after the Resume (RESUME-11)
        while True:
            self._pump()

    def _log_in(self):
        """With the stored access token (AUTH-11), refreshed if it expired; else with the password."""
        if self.tokens.get("access"):
            key, body = self._call("authenticate", {"accessToken": self.tokens["access"]})
            if key == "error" and error_code(body) == "TOKEN_EXPIRED" and self.tokens.get("refresh"):
                key, body = self._call("refresh", {"refreshToken": self.tokens["refresh"]})
                if key == "auth":
                    self._store(body)  # AUTH-10: keep the new refresh token before anything else
                    key, body = self._call("authenticate", {"accessToken": self.tokens["access"]})
            if key == "auth":
                self.me = num(obj(body.get("user")).get("user_id"))
                return
            log(f"the stored tokens were refused ({error_code(body) if key == 'error' else key}); logging in")
        key, body = self._call("login", {"username": ENV["CONFAB_USERNAME"], "password": ENV["CONFAB_PASSWORD"],
                                         "deviceName": "python-example"})
        if key != "auth":
            raise Refused(f"Login was answered {error_code(body) if key == 'error' else key}")
        self.me = num(obj(body.get("user")).get("user_id"))
        self._store(body)

    def _store(self, auth):
        """Keeps the tokens in CONFAB_STATE_DIR, replacing the file whole (never half a pair)."""
        self.tokens = {"access": text(auth.get("access_token")),
                       "refresh": text(auth.get("refresh_token")) or self.tokens.get("refresh", "")}
        with open(self.token_file + ".new", "w") as f:
            json.dump(self.tokens, f)
        os.replace(self.token_file + ".new", self.token_file)

    def _request(self, key, body, on_reply):
        """Sends a command; on_reply(body key, body) gets its reply. None when over the frame limit."""
        payload = json.dumps({"requestId": str(self.next_id + 1), key: body}, ensure_ascii=False).encode()
        if len(payload) > self.limit:  # LIMIT-1: never send a frame over the limit Welcome stated
            return None
        self.next_id += 1
        self.pending[self.next_id] = on_reply
        self.ws.send(TEXT, payload)
        self.last_out = time.monotonic()
        return self.next_id

    def _call(self, key, body):
        """A request answered before we go on (only while connecting)."""
        box = []
        if self._request(key, body, lambda *reply: box.append(reply)) is None:
            raise Refused(f"{key} would exceed the frame limit")
        while not box:
            self._pump()
        return box[0]

    def _pump(self):
        """Reads for a tick, then does what is due: stop, give up on a silent server, ping, send."""
        self.ws.poll(self._on_message)
        now = time.monotonic()
        if self.stopping:
            raise Lost(None, "disconnecting")
        if now - self.last_in > self.idle_s:  # LIVE-4: heard nothing for idle_timeout_ms: lost
            raise Lost(None, "the server fell silent")
        if self.ping_s and now - self.last_out >= self.ping_s:  # LIVE-1: a frame every interval
            self._request("ping", {}, lambda *reply: None)
        if self.resumed:
            with self.lock:
                due = [e for e in self.outbox if e["rid"] is None and e["due"] <= now]
            for entry in due:  # in their original order, with the same transaction ids (IDEM-5)
                entry["rid"] = self._request(entry["key"], entry["body"], lambda k, b, e=entry: self._outcome(e, k, b))
                if entry["rid"] is None:
                    self._finish(entry, error_line(entry["id"], "the frame would exceed max_frame_bytes"))

    def _on_message(self, opcode, payload):
        if opcode != TEXT:
            return log("ignored a binary message on a JSON session (WS-4)")
        self.last_in = time.monotonic()  # LIVE-2: any frame is a sign of life
        try:
            frame = obj(snake(json.loads(payload.decode("utf-8"))))
            request_id = num(frame.get("request_id"))
            key = next((k for k in REPLIES + ("event", "close") if frame.get(k) is not None), None)
            body = parse_event(frame[key]) if key == "event" else obj(frame.get(key))
            if request_id:  # a reply, matched by request id (FRAME-4), even of a kind we do not know (ENC-8)
                on_reply = self.pending.pop(request_id, None)  # None: a reply sent twice
                if on_reply:
                    on_reply(key if key in REPLIES else None, body)
            elif key == "event":
                self._on_event(*body)
            elif key in ("error", "close"):  # for the log: the WebSocket close code decides (CLOSE-3)
                log(f"the server pushed {key} {body.get('code')}: {body.get('message') or body.get('reason')}")
            # Anything else (a Ping push, a push of a kind we do not know, an empty frame) is ignored (ENC-8).
        except (ValueError, TypeError) as e:
            # Never apply an undecodable frame (ENC-3). Skipping it could leave a request without its
            # reply, so we drop the connection instead: Resume and the outbox lose nothing.
            raise Lost(None, f"undecodable frame from the server ({e})")

    def _on_event(self, event, invitee):
        """RESUME-11: per room, each event once and in order."""
        room, epoch, seq = int(event["room_id"]), int(event["epoch"]), int(event["seq"])
        position = self.positions.get(room)
        if position is None:
            # A room joined elsewhere starts here (RESUME-6); but an invitation naming us is no
            # position in a room we do not follow.
            if not (event["kind"] == "member_invited" and invitee == self.me):
                self.positions[room] = (epoch, seq)
            emit({"type": "event", **event})
        elif epoch != position[0]:  # the log was rebuilt (LOG-3): reload as after RESET
            self._reset(room, epoch, seq)
        elif seq == position[1] + 1:  # the next one; one of an unknown kind advances too (LOG-5)
            self.positions[room] = (epoch, seq)
            emit({"type": "event", **event})
        elif seq > position[1] + 1 and not self.resuming:  # a gap: do not apply; Resume fills it
            log(f"gap in room {room}: event {seq} after {position[1]}; resuming")
            self._resume()
        # seq <= position: a duplicate, dropped.

    def _resume(self, announce=None):
        self.resuming = True
        positions = [compact({"roomId": str(r), "epoch": str(e), "seq": str(s)})
                     for r, (e, s) in self.positions.items()]
        self._request("resume", compact({"positions": positions}), lambda k, b: self._resumed(k, b, announce))

    def _resumed(self, key, body, announce):
        self.resuming = False
        if key != "resumed":  # say, RATE_LIMITED (RESUME-9a): try again on a new connection, after a backoff
            raise Lost(None, f"Resume was answered {error_code(body) if key == 'error' else key}")
        for status in body.get("rooms") or []:
            status = obj(status)
            room, epoch, head = (num(status.get(name)) for name in ("room_id", "epoch", "head_seq"))
            outcome, position = enum(status.get("outcome"), OUTCOMES), self.positions.get(room)
            if outcome == OUTCOMES["GONE"]:  # RESUME-4: not ours any more
                self.positions.pop(room, None)
            elif outcome == OUTCOMES["RESET"]:  # RESUME-3
                self._reset(room, epoch, head)
            elif position is None or position[0] != epoch or position[1] < head:
                # LIVE or REPLAYED; live events may have come first: never move back (RESUME-5).
                self.positions[room] = (epoch, head)
        if announce is not None:
            emit({"type": "connected", "session_id": str(announce)})

    def _reset(self, room, epoch, head):
        """The gap cannot be filled: reload the room with GetHistory, follow on from head (RESUME-3)."""
        emit({"type": "reset", "room_id": str(room), "epoch": str(epoch), "head_seq": str(head)})
        position = self.positions.get(room)
        if not (position and position[0] == epoch and position[1] > head):
            self.positions[room] = (epoch, head)
        # The page is what an application would show; the contract reports no events read by a reload.
        self._request("get_history", {"room": {"id": str(room)}, "anchorSeq": str(head + 1), "limit": 50},
                      lambda k, b: log(f"reloaded room {room}: {k}"))

    def _outcome(self, entry, key, body):
        """The reply to an outbox command."""
        if key == "error" and body.get("temporary"):  # ERR-4: keep it; retry, not before retry_after_ms
            entry["tries"] = entry.get("tries", 0) + 1
            retry = num(body.get("retry_after_ms")) / 1000 or min(2 ** entry["tries"], 30)
            entry["rid"], entry["due"] = None, time.monotonic() + retry
            return log(f"{entry['cmd']} {entry['id']}: {error_code(body)}, retrying in {retry} s")
        if key == "error":
            line = error_line(entry["id"], text(body.get("message")), code=error_code(body))
        elif entry["cmd"] == "send" and key == "sent":
            line = {"type": "sent", "id": entry["id"], **digits(body, "room_id", "epoch", "seq"),
                    "duplicate": bool(body.get("duplicate"))}
        elif entry["cmd"] == "history" and key == "history":
            events = [parse_event(e)[0] for e in body.get("events") or []]
            line = {"type": "history", "id": entry["id"], **digits(body, "room_id", "epoch", "head_seq"),
                    "has_more": bool(body.get("has_more")), "events": events}
        else:
            line = error_line(entry["id"], f"unexpected reply {key or 'of a kind this client does not know'}")
        self._finish(entry, line)

    def _finish(self, entry, line):
        with self.lock:
            self.outbox.remove(entry)  # IDEM-5: only an outcome takes a command out of the outbox
        emit(line)


# ---- The driver: commands on stdin, answers and reports on stdout ------------------------------


def main():
    if (ENV.get("CONFAB_TRANSPORT"), ENV.get("CONFAB_ENCODING")) != ("ws", "json") \
            or ENV.get("CONFAB_CASE") not in SUPPORTED:
        sys.exit(127)  # unsupported: said before reading anything
    client = None
    for raw in sys.stdin:  # the end of input means quit
        try:
            command = json.loads(raw)
            cmd, cid = command["cmd"], command.get("id")
        except (ValueError, TypeError, KeyError):
            log(f"not a command: {raw.strip()}")
            continue
        room = {"id": str(command.get("room_id"))}
        if cmd == "quit":
            break
        elif cmd == "connect" and client and not client.stopped:
            emit({"type": "connected", "id": cid})
        elif cmd == "connect":
            client = Client(cid)  # it answers once logged in
        elif cmd == "disconnect":
            if client:
                client.close()
            emit({"type": "disconnected", "id": cid})
        elif cmd in ("send", "history") and client is None:
            emit(error_line(cid, "not connected"))
        elif cmd == "send":  # a fresh transaction id, so that a resend is recognised (IDEM-5)
            client.submit(cid, "send", "send_message",
                          {"room": room, "text": command.get("text", ""), "clientTxnId": uuid.uuid4().hex})
        elif cmd == "history":
            forward = command.get("direction") == "FORWARD"  # BACKWARD is the default, so left out
            client.submit(cid, "history", "get_history", compact({
                "room": room, "direction": "FORWARD" if forward else None,
                "anchorSeq": str(command.get("anchor", 0)), "limit": command.get("limit", 0)}))
        else:
            emit(error_line(cid, f"unknown command {cmd!r}"))
    if client:
        client.close()


if __name__ == "__main__":
    main()
