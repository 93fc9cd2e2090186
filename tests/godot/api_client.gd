# Godot 3.2 MultiplayerAPI client that checks an echo server (examples/echo_server.rs, or its
# GDScript twin api_server.gd) with real Godot RPC/RSET/send_bytes, and reports each check.
#
# Run headless:  godot3-server --no-window --path tests/godot -s res://api_client.gd
# Configured only through environment variables (Godot parses its own options even after `--`):
#   API_PORT          server port (required)
#   API_ADDRESS       server address, default 127.0.0.1
#   API_COMPRESSION   none (default) | range      (range = COMPRESS_RANGE_CODER)
#   API_SERVER        rust (default) | godot: what is under test. godot (api_server.gd) accepts
#                     report's "rejected" = -1 (a GDScript server cannot count refused calls),
#                     expects the extra rset "greeting" = "hi" after the welcome and runs the
#                     call_me_back checks (puppet method accepted, master method refused)
#   API_PEERS         number of clients (this one included) taking part in the echo_all check,
#                     default 1; with N > 1 the client first waits for N - 1 other clients
#                     (peer_connected of ids other than 1), so start them together
#   API_STEP_TIMEOUT  seconds to wait for each answer, default 10
#   API_TIMEOUT       seconds for the whole run, default 120
#   API_KEEP_GOING    1: a wait that times out is a FAIL but the run goes on with the next
#                     check (diagnosis of a server that drops some calls; pair it with a short
#                     API_STEP_TIMEOUT); default 0: the run stops at the first timeout
#   API_SLEEP_USEC    main loop sleep per frame, default 1000 (Godot's default: 6900)
#
# Nodes: /root/Echo and /root/Echo/Deep/Er (ClientEcho below: echoed, echoed_from, welcome,
# report_reply, `remote var value`, `remote var greeting`, and on_puppet / on_master / on_remote
# for the call_me_back checks), /root/Nope (a plain Node: the server has no such path).
#
# Scenario (every call goes to peer 1 with rpc_id / rset_id / send_bytes(b, 1); each answer is
# awaited, at most API_STEP_TIMEOUT, before the next call unless said otherwise):
#   connect; welcome (arrives with this client's own id; [godot] greeting = "hi");
#   echo_all on Echo and on Echo/Deep/Er: echoed_from(sender, sender, "echo_all") from every client;
#   echo with 0 arguments, with 1 argument for every value of the catalog (every Godot 3 Variant
#     type; see catalog()), with 2..15 arguments, and with 16 arguments (the whole catalog in
#     groups of 16), on Echo and on Echo/Deep/Er; the same arguments must come back (objects come
#     back as an EncodedObjectAsID with a non-zero id, RIDs as some RID, NaN as NaN);
#   rpc_unreliable_id echo (0, 1 and 16 arguments); rset_id value (every catalog value, both
#     paths) and rset_unreliable_id value (some values): `value` must be set back to them
#     (an unreliable call left unanswered for 1 s is sent again, up to 5 times in all);
#   send_bytes of 1, 3, 256 and 60000 bytes: the same bytes come back from peer 1;
#   refused calls: puppet_only(), no_such_method(1), echo on /root/Nope; then report(): nothing
#     came back for them, and report_reply = {"echo", "rset", "raw", "rejected"} with the counts
#     sent ("rejected" = 3; -1 accepted from a godot server; for unreliable calls sent again,
#     any count between those answered and those sent);
#   a burst of 200 reliable echo(i) in one frame: all come back in order; report() again;
#   [godot] call_me_back: on_puppet runs, on_master is refused, on_remote runs; rset_me_back.
#
# Output: one line per event on stdout:
#   READY id=<id>   PEER_CONNECTED <id>   PEER_DISCONNECTED <id>
#   PASS <name> [details]      FAIL <name> <details>      (names have no spaces)
#   FAIL timeout <what>        (a wait ran out: the run stops there)
#   DONE pass=<n> fail=<m>     (last line; exit code 0 only if m = 0 and the run completed)
#   ERROR <message>            (bad configuration, exit code 2)
# Exit codes: 0 all passed; 1 a check failed or a wait timed out; 2 bad configuration;
# 3 API_TIMEOUT ran out; 4 connection failed or the server disconnected.
extends SceneTree

var peer = null
var my_id = 0
var server_kind = "rust"
var peers_expected = 1
var keep_going = false
var step_timeout_ms = 10000
var timeout_ms = 120000
var start_ms = 0
var finished = false
var quitting = false
var exit_code = 0
var connected = false
var n_pass = 0
var n_fail = 0
const UNRELIABLE_ATTEMPTS = 5
const UNRELIABLE_WAIT_MS = 1000

# Calls sent (reliable; unreliable apart) and unreliable calls answered, for report().
var sent = {"echo": 0, "rset": 0, "raw": 0, "echo_unreliable": 0, "rset_unreliable": 0}
var answered_unreliable = {"echo": 0, "rset": 0}
var other_peers = {}
var nodes = {}
var nope = null
var keep_alive = Reference.new()

# Inboxes, filled by the RPC/RSET/packet handlers.
var echoed = {}        # path -> [args, ...]
var echoed_from = {}   # path -> [[sender, args], ...]
var rsets = {}         # path -> [value, ...]
var welcomes = []
var greetings = []
var reports = []
var raws = []          # [[from, bytes], ...]
var callbacks = []     # [[method, path, arg], ...]


class ClientEcho extends Node:
	var main = null
	var MISSING = Reference.new()
	remote var value setget _set_value
	remote var greeting setget _set_greeting

	func _set_value(v):
		value = v
		main.got_rset(self, v)

	func _set_greeting(v):
		greeting = v
		main.greetings.append(v)

	func args_of(list):
		var out = []
		for x in list:
			if typeof(x) == TYPE_OBJECT and x == MISSING:
				break
			out.append(x)
		return out

	remote func echoed(a0 = MISSING, a1 = MISSING, a2 = MISSING, a3 = MISSING, a4 = MISSING,
			a5 = MISSING, a6 = MISSING, a7 = MISSING, a8 = MISSING, a9 = MISSING, a10 = MISSING,
			a11 = MISSING, a12 = MISSING, a13 = MISSING, a14 = MISSING, a15 = MISSING):
		main.got_echoed(self, args_of([a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12,
				a13, a14, a15]))

	remote func echoed_from(sender, a0 = MISSING, a1 = MISSING, a2 = MISSING, a3 = MISSING,
			a4 = MISSING, a5 = MISSING, a6 = MISSING, a7 = MISSING, a8 = MISSING, a9 = MISSING,
			a10 = MISSING, a11 = MISSING, a12 = MISSING, a13 = MISSING, a14 = MISSING,
			a15 = MISSING):
		main.got_echoed_from(self, sender, args_of([a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10,
				a11, a12, a13, a14, a15]))

	remote func welcome(id):
		main.welcomes.append([main.path_of(self), id, main.multiplayer.get_rpc_sender_id()])

	remote func report_reply(d):
		main.reports.append(d)

	puppet func on_puppet(x = null):
		main.callbacks.append(["on_puppet", main.path_of(self), x])

	master func on_master(x = null):
		main.callbacks.append(["on_master", main.path_of(self), x])

	remote func on_remote(x = null):
		main.callbacks.append(["on_remote", main.path_of(self), x])


func out(line):
	print(line.replace("\n", "\\n").replace("\r", "\\r"))


func env_str(name, default_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "":
		return default_value
	return v


func env_int(name, default_value, min_value, max_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "":
		return default_value
	if not v.is_valid_integer() or int(v) < min_value or int(v) > max_value:
		out("ERROR invalid %s=%s (expected an integer in %d..%d)" % [name, v, min_value, max_value])
		return null
	return int(v)


# Prints DONE and ends the run at the next _idle: closing the peer inside one of its signals
# (emitted from poll()) crashes Godot 3.2 ("double free or corruption").
func end_run(code):
	if finished:
		return
	finished = true
	exit_code = code
	if code != 2:
		out("DONE pass=%d fail=%d" % [n_pass, n_fail])


func abort(line, code):
	if finished:
		return
	n_fail += 1
	out(line)
	end_run(code)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	var sleep_usec = env_int("API_SLEEP_USEC", 1000, 0, 1000000)
	var port = env_int("API_PORT", null, 1, 65535)
	var timeout_s = env_int("API_TIMEOUT", 120, 1, 100000)
	var step_s = env_int("API_STEP_TIMEOUT", 10, 1, 100000)
	var n_peers = env_int("API_PEERS", 1, 1, 64)
	var keep = env_int("API_KEEP_GOING", 0, 0, 1)
	for v in [sleep_usec, timeout_s, step_s, n_peers, keep]:
		if v == null:
			end_run(2)
			return
	if port == null:
		out("ERROR API_PORT must be set to a port number")
		end_run(2)
		return
	OS.low_processor_usage_mode_sleep_usec = sleep_usec
	timeout_ms = timeout_s * 1000
	step_timeout_ms = step_s * 1000
	peers_expected = n_peers
	keep_going = keep == 1
	server_kind = env_str("API_SERVER", "rust")
	if server_kind != "rust" and server_kind != "godot":
		out("ERROR API_SERVER must be rust or godot, got '%s'" % server_kind)
		end_run(2)
		return
	var compression = env_str("API_COMPRESSION", "none")
	if compression != "none" and compression != "range":
		out("ERROR API_COMPRESSION must be none or range, got '%s'" % compression)
		end_run(2)
		return

	var echo = make_echo("Echo", root)
	var deep = Node.new()
	deep.name = "Deep"
	echo.add_child(deep)
	make_echo("Er", deep)
	nope = Node.new()
	nope.name = "Nope"
	root.add_child(nope)

	peer = NetworkedMultiplayerENet.new()
	if compression == "range":
		peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_RANGE_CODER)
	else:
		peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
	var address = env_str("API_ADDRESS", "127.0.0.1")
	var err = peer.create_client(address, port)
	if err != OK:
		out("ERROR create_client(%s, %d) failed: error %d" % [address, port, err])
		end_run(2)
		return
	set_network_peer(peer)
	multiplayer.connect("network_peer_connected", self, "_on_peer_connected")
	multiplayer.connect("network_peer_disconnected", self, "_on_peer_disconnected")
	multiplayer.connect("connected_to_server", self, "_on_connected")
	multiplayer.connect("connection_failed", self, "_on_connection_failed")
	multiplayer.connect("server_disconnected", self, "_on_server_disconnected")
	multiplayer.connect("network_peer_packet", self, "_on_packet")
	run()


func make_echo(name, parent):
	var n = ClientEcho.new()
	n.name = name
	n.main = self
	parent.add_child(n)
	var path = str(root.get_path_to(n))
	nodes[path] = n
	echoed[path] = []
	echoed_from[path] = []
	rsets[path] = []
	return n


func path_of(node):
	return str(root.get_path_to(node))


func _idle(_delta):
	if finished:
		if not quitting:
			quitting = true
			if peer != null and peer.get_connection_status() != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
				peer.close_connection()
			quit(exit_code)
		return
	if OS.get_ticks_msec() - start_ms > timeout_ms:
		abort("FAIL timeout overall (API_TIMEOUT=%ds)" % (timeout_ms / 1000), 3)


# --- handlers ---

func _on_peer_connected(id):
	out("PEER_CONNECTED %d" % id)
	if id != 1:
		other_peers[id] = true


func _on_peer_disconnected(id):
	out("PEER_DISCONNECTED %d" % id)


func _on_connected():
	connected = true
	my_id = get_network_unique_id()
	out("READY id=%d" % my_id)


func _on_connection_failed():
	abort("FAIL connect connection_failed", 4)


func _on_server_disconnected():
	abort("FAIL server_disconnected", 4)


func _on_packet(id, bytes):
	raws.append([id, bytes])


func got_echoed(node, args):
	echoed[path_of(node)].append(args)


func got_echoed_from(node, sender, args):
	echoed_from[path_of(node)].append([sender, args])


func got_rset(node, v):
	rsets[path_of(node)].append(v)


# --- checks ---

func check(name, problem, details = ""):
	if problem == "":
		n_pass += 1
		out(("PASS " + name + " " + details).strip_edges())
	else:
		n_fail += 1
		out("FAIL " + name + " " + problem)


# Waits (at least one frame, at most API_STEP_TIMEOUT) until callv(method, args) is true.
# On timeout prints FAIL timeout <what> and ends the run (with API_KEEP_GOING=1 it only returns
# false). Use: var ok = yield(wait_for(...), "completed")
# limit_ms >= 0 replaces API_STEP_TIMEOUT; quiet: a timeout only returns false.
func wait_for(method, args, what, limit_ms = -1, quiet = false):
	var deadline = OS.get_ticks_msec() + (step_timeout_ms if limit_ms < 0 else limit_ms)
	while true:
		yield(self, "idle_frame")
		if finished:
			return false
		if callv(method, args):
			return true
		if OS.get_ticks_msec() > deadline:
			if quiet:
				return false
			if keep_going:
				n_fail += 1
				out("FAIL timeout " + what)
			else:
				abort("FAIL timeout " + what, 1)
			return false


func has_echoed(path, n):
	return echoed[path].size() >= n


func has_rset(path):
	return not rsets[path].empty()


func has_raw():
	return not raws.empty()


func has_report():
	return not reports.empty()


func has_welcome():
	return not welcomes.empty() and (server_kind != "godot" or not greetings.empty())


func is_up():
	return connected


func enough_peers():
	return other_peers.size() >= peers_expected - 1


func echo_all_done(path, senders):
	var seen = {}
	for e in echoed_from[path]:
		seen[e[0]] = true
	for s in senders:
		if not seen.has(s):
			return false
	return true


func has_callback(method):
	for c in callbacks:
		if c[0] == method:
			return true
	return false


# "" when `got` is what must come back for `want`, else a description of the first difference.
func diff(want, got, where = "$"):
	var tw = typeof(want)
	var tg = typeof(got)
	if tw == TYPE_OBJECT and want != null:
		if tg != TYPE_OBJECT or got == null:
			return "%s: sent an object, got %s" % [where, repr(got)]
		if not (got is EncodedObjectAsID):
			return "%s: sent an object, got a %s, not an EncodedObjectAsID" % [where, got.get_class()]
		if got.object_id == 0:
			return "%s: sent an object, got an EncodedObjectAsID with id 0" % where
		return ""
	if tw != tg:
		return "%s: sent type %d %s, got type %d %s" % [where, tw, repr(want), tg, repr(got)]
	match tw:
		TYPE_REAL:
			if is_nan(want):
				return "" if is_nan(got) else "%s: sent NaN, got %s" % [where, repr(got)]
			if want == got:
				return ""
			return "%s: sent %s (%s), got %s (%s)" % [where, repr(want), var2bytes(want).hex_encode(),
					repr(got), var2bytes(got).hex_encode()]
		TYPE_RID:
			return ""  # a RID travels without a body: it arrives as some (empty) RID
		TYPE_ARRAY:
			if want.size() != got.size():
				return "%s: sent %d elements, got %d: %s" % [where, want.size(), got.size(), repr(got)]
			for i in range(want.size()):
				var d = diff(want[i], got[i], "%s[%d]" % [where, i])
				if d != "":
					return d
			return ""
		TYPE_DICTIONARY:
			var kw = want.keys()
			var kg = got.keys()
			if kw.size() != kg.size():
				return "%s: sent %d entries, got %d: %s" % [where, kw.size(), kg.size(), repr(got)]
			for i in range(kw.size()):
				var d = diff(kw[i], kg[i], "%s.key%d" % [where, i])
				if d == "":
					d = diff(want[kw[i]], got[kg[i]], "%s[%s]" % [where, repr(kw[i])])
				if d != "":
					return d
			return ""
		TYPE_RAW_ARRAY, TYPE_INT_ARRAY, TYPE_REAL_ARRAY, TYPE_STRING_ARRAY, TYPE_VECTOR2_ARRAY, \
				TYPE_VECTOR3_ARRAY, TYPE_COLOR_ARRAY:
			if want.size() != got.size():
				return "%s: sent %d elements, got %d" % [where, want.size(), got.size()]
			for i in range(want.size()):
				if want[i] != got[i]:
					return "%s[%d]: sent %s, got %s" % [where, i, repr(want[i]), repr(got[i])]
			return ""
		_:
			return "" if want == got else "%s: sent %s, got %s" % [where, repr(want), repr(got)]


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


# Every Godot 3 Variant type that can travel, as [label, value].
func catalog():
	var basis = Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9.5))
	return [
		["nil", null],
		["bool_true", true],
		["bool_false", false],
		["int_0", 0],
		["int_neg1", -1],
		["int_max_i32", 2147483647],
		["int_min_i32", -2147483648],
		["int_2p31", 2147483648],
		["int_neg2p31m1", -2147483649],
		["int_5e9", 5000000000],
		["int_max_i64", 9223372036854775807],
		["int_min_i64", -9223372036854775807 - 1],
		["float_0", 0.0],
		["float_0.1", 0.1],
		["float_0.5", 0.5],
		["float_neg1e300", -1e300],
		["float_inf", INF],
		["float_neg_inf", -INF],
		["float_nan", NAN],
		["string_empty", ""],
		["string_ascii", "hello"],
		["string_utf8", "héllo wörld ✓ 日本語 🎮 \"q\"\ttab\nline"],
		["vector2", Vector2(1.5, -2.25)],
		["rect2", Rect2(1, 2, 3, 4.5)],
		["vector3", Vector3(0.1, -2, 3e10)],
		["transform2d", Transform2D(0.5, Vector2(3, 4))],
		["plane", Plane(Vector3(0, 1, 0), 2.5)],
		["quat", Quat(0.1, 0.2, 0.3, 0.9)],
		["aabb", AABB(Vector3(1, 2, 3), Vector3(4, 5, 6))],
		["basis", basis],
		["transform", Transform(basis, Vector3(10, 11, 12))],
		["color", Color(0.1, 0.2, 0.3, 0.4)],
		["nodepath_abs", NodePath("/root/Echo/Deep:position:x")],
		["nodepath_rel", NodePath("Deep/Er:value")],
		["nodepath_prop", NodePath(":a:b")],
		["nodepath_plain", NodePath("a/b/c")],
		["nodepath_empty", NodePath()],
		["rid_empty", RID()],
		["rid", root.get_viewport_rid()],
		["object_node", nodes["Echo"]],
		["object_reference", keep_alive],
		["object_tree", self],
		["dictionary", {"b": 1, "a": [1, "x", {"n": null}], 3: Vector2(1, 2), Vector2(0, 1): "vk",
				"nested": {"z": {"y": PoolIntArray([1, 2])}}}],
		["dictionary_empty", {}],
		["array", [1, "two", [3, [4, null]], {"k": 5.5}, 2.5, Color(1, 0, 0, 1)]],
		["array_with_object", [keep_alive, 1]],
		["array_empty", []],
		["pool_byte", PoolByteArray([0, 1, 127, 128, 254, 255])],
		["pool_int", PoolIntArray([0, -1, 2147483647, -2147483648, 12345])],
		["pool_real", PoolRealArray([0.5, -1.25, 3.0, 1e10])],
		["pool_string", PoolStringArray(["ab", "c", "", "héllo"])],
		["pool_vector2", PoolVector2Array([Vector2(1, 2), Vector2(-3, 4.5)])],
		["pool_vector3", PoolVector3Array([Vector3(1, 2, 3), Vector3(-4, 5.5, 6)])],
		["pool_color", PoolColorArray([Color(1, 0, 0, 1), Color(0.1, 0.2, 0.3, 0.4)])],
		["pool_byte_empty", PoolByteArray()],
		["pool_int_empty", PoolIntArray()],
		["pool_real_empty", PoolRealArray()],
		["pool_string_empty", PoolStringArray()],
		["pool_vector2_empty", PoolVector2Array()],
		["pool_vector3_empty", PoolVector3Array()],
		["pool_color_empty", PoolColorArray()],
	]


func values_of(entries):
	var out = []
	for e in entries:
		out.append(e[1])
	return out


# Groups of exactly n values covering the catalog (the last group wraps around to the start).
func groups_of(values, n):
	var groups = []
	var i = 0
	while i < values.size():
		var g = []
		for j in range(n):
			g.append(values[(i + j) % values.size()])
		groups.append(g)
		i += n
	return groups


# --- steps ---

# Sends echo(args) to `path` and checks the answer. Returns false when the run must stop.
# With API_KEEP_GOING=1, answers left over from a case that timed out are dropped first.
# ENet's throttle may drop unreliable packets (when round trips jump): an unreliable call whose
# answer does not come within UNRELIABLE_WAIT_MS is sent again, up to UNRELIABLE_ATTEMPTS times
# in all, and report() then accepts any count between the calls answered and the calls sent.
func echo_case(name, path, args, unreliable = false):
	var node = nodes[path]
	if keep_going:
		echoed[path].clear()
	var attempts = UNRELIABLE_ATTEMPTS if unreliable else 1
	var tries = 0
	var ok = false
	while tries < attempts and not ok and not finished:
		tries += 1
		node.callv("rpc_unreliable_id" if unreliable else "rpc_id", [1, "echo"] + args)
		sent["echo" if not unreliable else "echo_unreliable"] += 1
		var last = tries == attempts
		ok = yield(wait_for("has_echoed", [path, 1], "echoed for " + name,
				-1 if last else UNRELIABLE_WAIT_MS, not last), "completed")
	if not ok:
		return not finished
	if unreliable:
		answered_unreliable["echo"] += 1
	var got = echoed[path].pop_front()
	check(name, diff(args, got), "" if tries == 1 else "attempts=%d" % tries)
	return true


func rset_case(name, path, v, unreliable = false):
	var node = nodes[path]
	if keep_going:
		rsets[path].clear()
	var attempts = UNRELIABLE_ATTEMPTS if unreliable else 1
	var tries = 0
	var ok = false
	while tries < attempts and not ok and not finished:
		tries += 1
		node.call("rset_unreliable_id" if unreliable else "rset_id", 1, "value", v)
		sent["rset" if not unreliable else "rset_unreliable"] += 1
		var last = tries == attempts
		ok = yield(wait_for("has_rset", [path], "value set back for " + name,
				-1 if last else UNRELIABLE_WAIT_MS, not last), "completed")
	if not ok:
		return not finished
	if unreliable:
		answered_unreliable["rset"] += 1
	var got = rsets[path].pop_front()
	check(name, diff(v, got), "" if tries == 1 else "attempts=%d" % tries)
	return true


func raw_case(name, bytes):
	if keep_going:
		raws.clear()
	multiplayer.send_bytes(bytes, 1)
	sent["raw"] += 1
	var ok = yield(wait_for("has_raw", [], "raw bytes back for " + name), "completed")
	if not ok:
		return not finished
	var r = raws.pop_front()
	if r[0] != 1:
		check(name, "came from peer %d, not 1" % r[0])
	else:
		check(name, diff(bytes, r[1]), "len=%d" % bytes.size())
	return true


func report_case(name, rejected):
	nodes["Echo"].rpc_id(1, "report")
	var ok = yield(wait_for("has_report", [], "report_reply for " + name), "completed")
	if not ok:
		return not finished
	var r = reports.pop_front()
	if typeof(r) != TYPE_DICTIONARY:
		check(name, "report_reply sent %s, not a Dictionary" % repr(r))
		return true
	var want = {"echo": sent["echo"], "rset": sent["rset"], "raw": sent["raw"], "rejected": rejected}
	# Unreliable calls: at least those answered arrived, at most those sent.
	var slack = {"echo": sent["echo_unreliable"] - answered_unreliable["echo"],
			"rset": sent["rset_unreliable"] - answered_unreliable["rset"]}
	want["echo"] += answered_unreliable["echo"]
	want["rset"] += answered_unreliable["rset"]
	if server_kind == "godot" and typeof(r.get("rejected")) == TYPE_INT and r["rejected"] == -1:
		want["rejected"] = -1
	var keys = r.keys()
	keys.sort()
	var want_keys = want.keys()
	want_keys.sort()
	if keys != want_keys:
		check(name, "keys %s, want %s: %s" % [repr(keys), repr(want_keys), repr(r)])
		return true
	var problem = ""
	for k in want_keys:
		var most = want[k] + slack.get(k, 0)
		if typeof(r[k]) != TYPE_INT or r[k] < want[k] or r[k] > most:
			if most == want[k]:
				problem += " %s=%s (want %d)" % [k, repr(r[k]), want[k]]
			else:
				problem += " %s=%s (want %d..%d)" % [k, repr(r[k]), want[k], most]
	check(name, problem.strip_edges(), repr(r))
	return true


func nothing_pending():
	var left = []
	for p in nodes.keys():
		for a in echoed[p]:
			left.append("echoed on %s %s" % [p, repr(a)])
		for v in rsets[p]:
			left.append("value on %s set to %s" % [p, repr(v)])
	for r in raws:
		left.append("raw from %d %s" % [r[0], r[1].hex_encode()])
	if left.empty():
		return ""
	return "unexpected answers: " + PoolStringArray(left).join("; ")


func run():
	yield(run_steps(), "completed")
	end_run(0 if n_fail == 0 else 1)


func run_steps():
	var ok = yield(wait_for("is_up", [], "connecting to the server"), "completed")
	if not ok:
		return
	check("connect", "", "id=%d" % my_id)

	ok = yield(wait_for("has_welcome", [], "welcome"), "completed")
	if finished:
		return
	var w = welcomes.pop_front() if not welcomes.empty() else ["-", null, 0]
	if not ok:
		pass
	elif w[0] != "Echo" or typeof(w[1]) != TYPE_INT or w[1] != my_id or w[2] != 1:
		check("welcome", "welcome(%s) on %s from %d, want welcome(%d) on Echo from 1" % [repr(w[1]),
				w[0], w[2], my_id])
	else:
		check("welcome", "", "id=%d" % my_id)
	if ok and server_kind == "godot":
		check("greeting", "" if greetings == ["hi"] else "greeting set to %s" % repr(greetings))

	# echo_all: needs every participating client connected first.
	ok = yield(wait_for("enough_peers", [], "%d other clients" % (peers_expected - 1)), "completed")
	if finished:
		return
	var senders = [my_id]
	for id in other_peers.keys():
		senders.append(id)
	for path in ["Echo", "Echo/Deep/Er"]:
		nodes[path].rpc_id(1, "echo_all", my_id, "echo_all")
	for path in ["Echo", "Echo/Deep/Er"]:
		ok = yield(wait_for("echo_all_done", [path, senders], "echoed_from on %s from all of %s" % [
				path, repr(senders)]), "completed")
		if finished:
			return
		if not ok:
			continue
		var problem = ""
		for e in echoed_from[path]:
			if diff([e[0], "echo_all"], e[1]) != "":
				problem += " echoed_from(%s, %s)" % [repr(e[0]), repr(e[1])]
		check("echo_all:" + path, problem.strip_edges(), "senders=%s" % repr(senders))

	var entries = catalog()
	var values = values_of(entries)
	for path in ["Echo", "Echo/Deep/Er"]:
		ok = yield(echo_case("echo0:" + path, path, []), "completed")
		if not ok:
			return
		for e in entries:
			ok = yield(echo_case("echo1:%s:%s" % [path, e[0]], path, [e[1]]), "completed")
			if not ok:
				return
		var k = 0
		for g in groups_of(values, 16):
			ok = yield(echo_case("echo16:%s:%d" % [path, k], path, g), "completed")
			if not ok:
				return
			k += 1
	for n in range(2, 16):
		ok = yield(echo_case("echo%d:Echo" % n, "Echo", values.slice(n, 2 * n - 1)), "completed")
		if not ok:
			return

	for path in ["Echo", "Echo/Deep/Er"]:
		ok = yield(echo_case("echo_unreliable0:" + path, path, [], true), "completed")
		if not ok:
			return
		ok = yield(echo_case("echo_unreliable1:" + path, path, ["unreliable"], true), "completed")
		if not ok:
			return
		ok = yield(echo_case("echo_unreliable16:" + path, path, groups_of(values, 16)[1], true),
				"completed")
		if not ok:
			return

	for e in entries:
		ok = yield(rset_case("rset:Echo:" + e[0], "Echo", e[1]), "completed")
		if not ok:
			return
	for e in [["int", 42], ["string", "deep"], ["dictionary", {"k": [1, 2]}], ["nil", null]]:
		ok = yield(rset_case("rset:Echo/Deep/Er:" + e[0], "Echo/Deep/Er", e[1]), "completed")
		if not ok:
			return
	for path in ["Echo", "Echo/Deep/Er"]:
		for e in [["int", 7], ["vector3", Vector3(1, 2, 3)], ["pool_string", PoolStringArray(["x"])]]:
			ok = yield(rset_case("rset_unreliable:%s:%s" % [path, e[0]], path, e[1], true),
					"completed")
			if not ok:
				return

	var big = PoolByteArray()
	big.resize(60000)
	for i in range(60000):
		big[i] = (i * 7 + 3) % 256
	var b256 = PoolByteArray()
	for i in range(256):
		b256.append(255 - i)
	for e in [["raw1", PoolByteArray([0])], ["raw3", PoolByteArray([1, 2, 3])], ["raw256", b256],
			["raw60000", big]]:
		ok = yield(raw_case(e[0], e[1]), "completed")
		if not ok:
			return

	# Refused calls: nothing comes back; the report (sent after them, reliable and ordered) is
	# the barrier.
	nodes["Echo"].rpc_id(1, "puppet_only")
	nodes["Echo"].rpc_id(1, "no_such_method", 1)
	nope.rpc_id(1, "echo", "to nowhere")
	ok = yield(report_case("report", 3), "completed")
	if not ok:
		return
	check("refused_no_answer", nothing_pending())

	for i in range(200):
		nodes["Echo"].rpc_id(1, "echo", i)
	sent["echo"] += 200
	ok = yield(wait_for("has_echoed", ["Echo", 200], "200 echoed for the burst"), "completed")
	if not ok:
		return
	var problem = ""
	for i in range(200):
		var a = echoed["Echo"][i]
		if a.size() != 1 or typeof(a[0]) != TYPE_INT or a[0] != i:
			problem = "answer %d is %s, want [%d]" % [i, repr(a), i]
			break
	for i in range(200):
		echoed["Echo"].pop_front()
	check("burst200", problem)
	ok = yield(report_case("report_after_burst", 3), "completed")
	if not ok:
		return
	check("burst_no_extra", nothing_pending())

	if server_kind == "godot":
		nodes["Echo"].rpc_id(1, "call_me_back", "Echo", "on_puppet", ["p"])
		nodes["Echo"].rpc_id(1, "call_me_back", "Echo", "on_master", ["m"])
		nodes["Echo"].rpc_id(1, "call_me_back", "Echo/Deep/Er", "on_remote", ["r"])
		ok = yield(wait_for("has_callback", ["on_remote"], "on_remote callback"), "completed")
		if not ok:
			return
		var want = [["on_puppet", "Echo", "p"], ["on_remote", "Echo/Deep/Er", "r"]]
		check("call_me_back", "" if callbacks == want else "callbacks %s, want %s" % [repr(callbacks),
				repr(want)])
		nodes["Echo"].rpc_id(1, "rset_me_back", "Echo/Deep/Er", "value", Vector2(9, 8))
		ok = yield(wait_for("has_rset", ["Echo/Deep/Er"], "rset_me_back"), "completed")
		if not ok:
			return
		check("rset_me_back", diff(Vector2(9, 8), rsets["Echo/Deep/Er"].pop_front()))

	end_run(0 if n_fail == 0 else 1)
