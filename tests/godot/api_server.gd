# Godot 3.2 MultiplayerAPI echo server (real Godot RPC/RSET/send_bytes), the GDScript twin of
# examples/echo_server.rs, for testing a Rust MultiplayerApi *client* against the real engine
# (and for checking api_client.gd Godot to Godot).
#
# Run headless:  godot3-server --no-window --path tests/godot -s res://api_server.gd
# Configured only through environment variables (Godot parses its own options even after `--`):
#   API_PORT            listen port (required)
#   API_COMPRESSION     none (default) | range      (range = COMPRESS_RANGE_CODER)
#   API_TIMEOUT         seconds, default 60 (0 = none); then prints TIMEOUT and exits with code 3
#   API_MAX_CLIENTS     default 32
#   API_BIND_IP         default 127.0.0.1
#   API_RELAY           1 (default) | 0      server_relay
#   API_SLEEP_USEC      main loop sleep per frame, default 1000 (Godot's default: 6900)
#   API_EXIT_WHEN_EMPTY 1: exit with code 0 (after printing QUIT) when the last client leaves
# Godot has no SIGTERM handler: a signal kills it (exit status 143); to stop it cleanly use
# API_EXIT_WHEN_EMPTY=1 or the shutdown() RPC.
#
# It is peer 1, with nodes /root/Echo and /root/Echo/Deep/Er (paths "Echo" and "Echo/Deep/Er" on
# the wire). Both nodes carry the same script (EchoNode below), whose RPC/RSET surface is:
#   remote func echo(a0..a15)        -> rpc_id(sender, "echoed", <the same arguments>) on the same
#                                       node; rpc_unreliable_id when the call arrived on ENet
#                                       channel 2 (unreliable), else reliable.
#   remote func echo_all(a0..a15)    -> rpc("echoed_from", sender, <the same arguments>) (all clients)
#   remote var value                 -> on every rset: rset_id(sender, "value", v) on the same node
#   remote func report()             -> rpc_id(sender, "report_reply",
#                                       {"echo": n, "rset": n, "raw": n, "rejected": -1})
#                                       counts of that sender's calls on any node; "echo" counts
#                                       echo only (not echo_all); "rejected" is always -1: Godot
#                                       refuses calls before any script runs and tells no script
#                                       about it (it logs them on stderr, see below).
#   puppet func puppet_only()        (the server is the master: Godot always refuses it; were it
#                                       ever run, it would answer echoed("puppet_only ran"))
#   remote func call_me_back(path, method, args = [], unreliable = false)
#                                    -> node at `path` (relative to /root, e.g. "Echo"; missing
#                                       plain Nodes are created) does rpc_id(sender, method, *args)
#                                       (rpc_unreliable_id when unreliable)
#   remote func call_everyone(path, method, args = [], unreliable = false)
#                                    -> the same with rpc(method, *args) / rpc_unreliable: all clients
#   remote func rset_me_back(path, prop, v, unreliable = false)
#                                    -> node at `path` does rset_id(sender, prop, v)
#                                       (rset_unreliable_id when unreliable)
#   remote func kick_me()            -> disconnect_peer(sender)
#   remote func shutdown()           -> prints QUIT, closes the connection, exits with code 0
# The master of every node is the server (1), so on a client a `puppet` method called through
# call_me_back must run (the sender is the master) and a `master` method must be refused.
# When a client connects: Echo does rpc_id(id, "welcome", id), then rset_id(id, "greeting", "hi").
# RAW: multiplayer.send_bytes(b) from a client -> send_bytes(b, sender) back (reliable).
# GDScript has no varargs: echo/echo_all take 16 parameters whose default is a private sentinel
# object (never equal to anything that arrives from the network), so the argument count is the
# number of parameters before the first sentinel. More than 16 arguments: Godot refuses the call
# (stderr: "Method expected 16 arguments, but called with 17.").
#
# Output: one line per event on stdout:
#   READY id=1 port=<port> compression=<none|range>
#   PEER_CONNECTED <id>            PEER_DISCONNECTED <id>
#   CALL from=<id> ch=<enet channel> path=<path> method=<name> argc=<n> hex=<h0,h1,...|-> text=<args>
#   RSET from=<id> ch=<enet channel> path=<path> prop=<name> hex=<h> text=<value>
#   RAW from=<id> ch=<enet channel> len=<n> fnv=<fnv1a-32 hex> hex=<bytes, or the first 64 bytes and "...">
#   SENT rpc|rpc_unreliable|rset|rset_unreliable|raw to=<id|all> path=<path> name=<method|prop|-> argc=<n>
#   REPORT from=<id> echo=<n> rset=<n> raw=<n> rejected=-1
#   KICK <id>    QUIT    TIMEOUT    ERROR <message>
# ch: ENet channel of the packet (1 = reliable, 2 = unreliable, 3.. = custom). hex: each argument
# as var2bytes() would encode it, i.e. its Variant bytes on the wire, except that an object that
# arrived as an id (EncodedObjectAsID) is printed as the id it arrived with (an object nested in
# an Array/Dictionary is printed as the local EncodedObjectAsID's id). Padding bytes in hex are
# not meaningful (Godot does not zero NodePath padding): decode, do not compare hex.
# text: the arguments as an Array in a readable one-line form (see repr()).
# Calls Godot refuses print nothing here; Godot writes two lines each on stderr, e.g.
#   ERROR: _process_rpc: RPC 'puppet_only' is not allowed on node /root/Echo from: <id>. Mode is 3, master is 1.
#   ERROR: _process_get_node: Failed to get path from RPC: Nope.
extends SceneTree

const CH_UNRELIABLE = 2

var peer = null
var start_ms = 0
var timeout_ms = 60000
var finished = false
var quitting = false
var exit_code = 0
var exit_when_empty = false
var had_client = false
# sender id -> {"echo": n, "rset": n, "raw": n}
var counts = {}
var echo_node = null


class EchoNode extends Node:
	var main = null
	var MISSING = Reference.new()
	remote var value setget _set_value

	func _set_value(v):
		value = v
		if main != null:
			main.on_rset(self, "value", v)

	func args_of(list):
		var out = []
		for x in list:
			if typeof(x) == TYPE_OBJECT and x == MISSING:
				break
			out.append(x)
		return out

	remote func echo(a0 = MISSING, a1 = MISSING, a2 = MISSING, a3 = MISSING, a4 = MISSING,
			a5 = MISSING, a6 = MISSING, a7 = MISSING, a8 = MISSING, a9 = MISSING, a10 = MISSING,
			a11 = MISSING, a12 = MISSING, a13 = MISSING, a14 = MISSING, a15 = MISSING):
		main.on_echo(self, args_of([a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13,
				a14, a15]))

	remote func echo_all(a0 = MISSING, a1 = MISSING, a2 = MISSING, a3 = MISSING, a4 = MISSING,
			a5 = MISSING, a6 = MISSING, a7 = MISSING, a8 = MISSING, a9 = MISSING, a10 = MISSING,
			a11 = MISSING, a12 = MISSING, a13 = MISSING, a14 = MISSING, a15 = MISSING):
		main.on_echo_all(self, args_of([a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12,
				a13, a14, a15]))

	remote func report():
		main.on_report(self)

	puppet func puppet_only():
		main.on_call(self, "puppet_only", [])
		main.send_rpc(self, main.sender(), "echoed", ["puppet_only ran"], false)

	remote func call_me_back(path, method, args = [], unreliable = false):
		main.on_call(self, "call_me_back", [path, method, args, unreliable])
		var node = main.node_at(path)
		if node != null:
			main.send_rpc(node, main.sender(), method, args, unreliable)

	remote func call_everyone(path, method, args = [], unreliable = false):
		main.on_call(self, "call_everyone", [path, method, args, unreliable])
		var node = main.node_at(path)
		if node != null:
			main.send_rpc(node, 0, method, args, unreliable)

	remote func rset_me_back(path, prop, v, unreliable = false):
		main.on_call(self, "rset_me_back", [path, prop, v, unreliable])
		var node = main.node_at(path)
		if node != null:
			main.send_rset(node, main.sender(), prop, v, unreliable)

	remote func kick_me():
		main.on_call(self, "kick_me", [])
		main.kick(main.sender())

	remote func shutdown():
		main.on_call(self, "shutdown", [])
		main.stop("QUIT", 0)


func out(line):
	print(line.replace("\n", "\\n").replace("\r", "\\r"))


func env_str(name, default_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "":
		return default_value
	return v


# The integer value of env var `name`, or null (after printing ERROR) when it is invalid.
func env_int(name, default_value, min_value, max_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "":
		return default_value
	if not v.is_valid_integer() or int(v) < min_value or int(v) > max_value:
		out("ERROR invalid %s=%s (expected an integer in %d..%d)" % [name, v, min_value, max_value])
		return null
	return int(v)


# Prints `line` and ends the run at the next _idle: closing the peer inside one of its signals
# (emitted from poll()) crashes Godot 3.2 ("double free or corruption").
func stop(line, code):
	if finished:
		return
	finished = true
	exit_code = code
	if line != "":
		out(line)


func _idle(_delta):
	if finished:
		if not quitting:
			quitting = true
			if peer != null and peer.get_connection_status() != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
				peer.close_connection()
			quit(exit_code)
		return
	if timeout_ms > 0 and OS.get_ticks_msec() - start_ms > timeout_ms:
		stop("TIMEOUT", 3)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	var sleep_usec = env_int("API_SLEEP_USEC", 1000, 0, 1000000)
	var port = env_int("API_PORT", null, 1, 65535)
	var timeout_s = env_int("API_TIMEOUT", 60, 0, 100000)
	var max_clients = env_int("API_MAX_CLIENTS", 32, 1, 4095)
	var relay = env_int("API_RELAY", 1, 0, 1)
	var empty_exit = env_int("API_EXIT_WHEN_EMPTY", 0, 0, 1)
	for v in [sleep_usec, timeout_s, max_clients, relay, empty_exit]:
		if v == null:
			stop("", 2)
			return
	if port == null:
		stop("ERROR API_PORT must be set to a port number", 2)
		return
	OS.low_processor_usage_mode_sleep_usec = sleep_usec
	timeout_ms = timeout_s * 1000
	exit_when_empty = empty_exit == 1
	var compression = env_str("API_COMPRESSION", "none")
	if compression != "none" and compression != "range":
		stop("ERROR API_COMPRESSION must be none or range, got '%s'" % compression, 2)
		return

	echo_node = make_echo("Echo", root)
	var deep = Node.new()
	deep.name = "Deep"
	echo_node.add_child(deep)
	make_echo("Er", deep)

	peer = NetworkedMultiplayerENet.new()
	if compression == "range":
		peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_RANGE_CODER)
	else:
		peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
	peer.set_server_relay_enabled(relay == 1)
	peer.set_bind_ip(env_str("API_BIND_IP", "127.0.0.1"))
	var err = peer.create_server(port, max_clients)
	if err != OK:
		stop("ERROR create_server(%d, %d) failed: error %d" % [port, max_clients, err], 2)
		return
	set_network_peer(peer)
	multiplayer.connect("network_peer_connected", self, "_on_peer_connected")
	multiplayer.connect("network_peer_disconnected", self, "_on_peer_disconnected")
	multiplayer.connect("network_peer_packet", self, "_on_packet")
	out("READY id=%d port=%d compression=%s" % [get_network_unique_id(), port, compression])


func make_echo(name, parent):
	var n = EchoNode.new()
	n.name = name
	n.main = self
	parent.add_child(n)
	return n


func sender():
	return multiplayer.get_rpc_sender_id()


func wire_path(node):
	return str(root.get_path_to(node))


# Node at `path` relative to /root; missing plain Nodes are created on the way.
func node_at(path):
	var np = NodePath(str(path))
	if np.is_absolute() or np.is_empty():
		out("ERROR node path must be relative to /root and not empty: %s" % str(path))
		return null
	var node = root
	for i in range(np.get_name_count()):
		var name = np.get_name(i)
		var child = node.get_node_or_null(name)
		if child == null:
			child = Node.new()
			child.name = name
			node.add_child(child)
		node = child
	return node


func counts_of(id):
	if not counts.has(id):
		counts[id] = {"echo": 0, "rset": 0, "raw": 0}
	return counts[id]


func count(id, what):
	counts_of(id)[what] += 1


func channel():
	return peer.get_last_packet_channel()


func on_call(node, method, args):
	out("CALL from=%d ch=%d path=%s method=%s argc=%d hex=%s text=%s" % [sender(), channel(),
			wire_path(node), method, args.size(), hex_list(args), repr(args)])


func on_echo(node, args):
	on_call(node, "echo", args)
	var from = sender()
	count(from, "echo")
	send_rpc(node, from, "echoed", args, channel() == CH_UNRELIABLE)


func on_echo_all(node, args):
	on_call(node, "echo_all", args)
	send_rpc(node, 0, "echoed_from", [sender()] + args, false)


func on_rset(node, prop, v):
	var from = sender()
	if from == 0:
		return  # a local assignment, not a network rset
	out("RSET from=%d ch=%d path=%s prop=%s hex=%s text=%s" % [from, channel(), wire_path(node),
			prop, hex_of(v), repr(v)])
	count(from, "rset")
	send_rset(node, from, prop, v, false)


func on_report(node):
	on_call(node, "report", [])
	var from = sender()
	var c = counts_of(from)
	var reply = {"echo": c["echo"], "rset": c["rset"], "raw": c["raw"], "rejected": -1}
	out("REPORT from=%d echo=%d rset=%d raw=%d rejected=-1" % [from, c["echo"], c["rset"], c["raw"]])
	send_rpc(node, from, "report_reply", [reply], false)


func send_rpc(node, to, method, args, unreliable):
	var fn = "rpc_unreliable" if unreliable else "rpc"
	if to == 0:
		node.callv(fn, [method] + args)
	else:
		node.callv(fn + "_id", [to, method] + args)
	out("SENT %s to=%s path=%s name=%s argc=%d" % [fn, "all" if to == 0 else str(to),
			wire_path(node), method, args.size()])


func send_rset(node, to, prop, v, unreliable):
	var fn = "rset_unreliable" if unreliable else "rset"
	if to == 0:
		node.call(fn, prop, v)
	else:
		node.call(fn + "_id", to, prop, v)
	out("SENT %s to=%s path=%s name=%s argc=1" % [fn, "all" if to == 0 else str(to),
			wire_path(node), prop])


func kick(id):
	out("KICK %d" % id)
	peer.disconnect_peer(id)


func _on_peer_connected(id):
	had_client = true
	out("PEER_CONNECTED %d" % id)
	send_rpc(echo_node, id, "welcome", [id], false)
	send_rset(echo_node, id, "greeting", "hi", false)


func _on_peer_disconnected(id):
	counts.erase(id)
	out("PEER_DISCONNECTED %d" % id)
	if exit_when_empty and had_client and multiplayer.get_network_connected_peers().empty():
		stop("QUIT", 0)


func _on_packet(id, bytes):
	out("RAW from=%d ch=%d len=%d fnv=%s hex=%s" % [id, channel(), bytes.size(), fnv1a(bytes),
			short_hex(bytes)])
	count(id, "raw")
	multiplayer.send_bytes(bytes, id)
	out("SENT raw to=%d path=- name=- argc=1" % id)


func fnv1a(bytes):
	var h = 2166136261
	for b in bytes:
		h = ((h ^ b) * 16777619) & 0xffffffff
	return "%08x" % h


func short_hex(bytes):
	if bytes.size() <= 64:
		return bytes.hex_encode()
	return bytes.subarray(0, 63).hex_encode() + "..."


func hex_of(v):
	if v is EncodedObjectAsID:
		var b = StreamPeerBuffer.new()
		b.put_u32(17 | (1 << 16))
		b.put_u64(v.object_id)
		return b.data_array.hex_encode()
	return var2bytes(v).hex_encode()


func hex_list(args):
	if args.empty():
		return "-"
	var parts = PoolStringArray()
	for a in args:
		parts.append(hex_of(a))
	return parts.join(",")


# A readable one-line form of a Variant: Strings quoted and C-escaped, objects that arrived as ids
# as ObjectID(<id>), containers recursively, everything else as var2str() gives it.
func repr(v):
	match typeof(v):
		TYPE_STRING:
			return "\"" + v.c_escape() + "\""
		TYPE_OBJECT:
			if v == null:
				return "Object(null)"
			if v is EncodedObjectAsID:
				return "ObjectID(%d)" % v.object_id
			return "Object(%s)" % v.get_class()
		TYPE_ARRAY:
			var parts = PoolStringArray()
			for x in v:
				parts.append(repr(x))
			return "[" + parts.join(", ") + "]"
		TYPE_DICTIONARY:
			var parts = PoolStringArray()
			for k in v.keys():
				parts.append(repr(k) + ": " + repr(v[k]))
			return "{" + parts.join(", ") + "}"
		TYPE_REAL:
			# var2str() prints doubles beyond float range as "inf" (Godot 3.2).
			if is_nan(v) or is_inf(v) or abs(v) < 1e15:
				return var2str(v)
			return str(v)
		TYPE_RID:
			return "RID(%d)" % v.get_id()
		_:
			return var2str(v).replace("\n", " ")
