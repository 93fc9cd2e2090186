"""UDP proxy for scripts/bench_rpc_paths.sh: forwards between Godot clients and a server and
counts the ENet data packets (and their bytes) the clients send."""
import json, selectors, signal, socket, struct, sys, time

listen_port, server_port = int(sys.argv[1]), int(sys.argv[2])
SIZES = {1: 8, 2: 48, 3: 44, 4: 8, 5: 4, 6: 6, 7: 8, 8: 24, 9: 8, 10: 12, 11: 16, 12: 24}
stats = {"packets_in_total": 0, "bytes_in_total": 0, "unparsed_datagrams": 0, "clients": 0}
seen = {}  # client address -> set of (channel, reliable sequence) already counted

def count(addr, d):
    if len(d) < 2:
        return
    flags = struct.unpack_from(">H", d, 0)[0]
    if flags & 0x4000:  # compressed: not expected (the clients use none)
        stats["unparsed_datagrams"] += 1
        return
    off = 4 if flags & 0x8000 else 2
    done = seen.setdefault(addr, set())
    while off + 4 <= len(d):
        cmd, channel, seq = d[off] & 0x0F, d[off + 1], struct.unpack_from(">H", d, off + 2)[0]
        size = SIZES.get(cmd)
        if size is None or off + size > len(d):
            stats["unparsed_datagrams"] += 1
            return
        length, first, total = 0, True, None
        if cmd == 6:
            length = struct.unpack_from(">H", d, off + 4)[0]
        elif cmd in (7, 9):
            length = struct.unpack_from(">H", d, off + 6)[0]
        elif cmd in (8, 12):
            start, length, _n, number, total = struct.unpack_from(">HHIII", d, off + 4)
            first, seq = number == 0, start
        if cmd in (6, 7, 8, 9, 12) and channel != 0xFF:
            reliable = cmd in (6, 8)
            key = (channel, seq, cmd)
            if first and not (reliable and key in done):
                if reliable:
                    done.add(key)
                stats["packets_in_total"] += 1
                stats["bytes_in_total"] += total if total is not None else length
        off += size + length

sel = selectors.DefaultSelector()
lsock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
lsock.bind(("127.0.0.1", listen_port))
sel.register(lsock, selectors.EVENT_READ, None)
up = {}
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
print("READY", flush=True)
last = time.monotonic()
while not stop:
    for key, _ in sel.select(0.05):
        s = key.fileobj
        try:
            if key.data is None:
                d, addr = s.recvfrom(65536)
                u = up.get(addr)
                if u is None:
                    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    u.connect(("127.0.0.1", server_port))
                    up[addr] = u
                    sel.register(u, selectors.EVENT_READ, addr)
                    stats["clients"] = len(up)
                count(addr, d)
                u.send(d)
            else:
                lsock.sendto(s.recv(65536), key.data)
        except OSError:
            pass
    if time.monotonic() - last >= 0.2:
        last = time.monotonic()
        print(json.dumps(stats), flush=True)
print(json.dumps(stats), flush=True)
