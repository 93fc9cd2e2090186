# Scriptable Godot 3.2 multiplayer agent for the WebSocket interop tests (tests/godot_websocket.rs):
# a WebSocketClient (connect_to_url(url, PoolStringArray(), true)) or WebSocketServer
# (listen(port, PoolStringArray(), true)), or, for the mixed ENet + WebSocket room, a
# NetworkedMultiplayerENet client or server, with the same commands and reports, so that one
# harness drives every Godot peer of a room. The vocabulary is agent.gd's, plus RPCs, numbered
# bursts and big packets.
#
# Run headless:  godot3-server --path tests/godot -s res://ws_agent.gd
# Configured only through environment variables (Godot parses its own options even after `--`):
#   AGENT_ROLE              server | client                                    (required)
#   AGENT_PORT              listen port (server) / port to connect to (client)   (required)
#   AGENT_TRANSPORT         websocket (default) | enet
#   AGENT_ADDRESS           client: server address, default 127.0.0.1 (url ws://<address>:<port>/)
#   AGENT_URL               websocket client: the whole url instead
#   AGENT_API               1 (default): the peer is the tree's network_peer (Godot's MultiplayerAPI
#                           polls it, RPCs work, raw packets are send_bytes / network_peer_packet,
#                           i.e. on the wire they start with the RAW command byte 4);
#                           0: a bare peer that this script polls and reads itself (agent.gd's
#                           way: payloads are exactly the bytes sent, no RPC)
#   AGENT_POLL              1 (default) | 0: with AGENT_API=0, whether the script calls poll()
#   AGENT_COMPRESSION       enet: none (default) | range
#   AGENT_CHANNELS          enet: channel_count (>= 3); default Godot's (3)
#   AGENT_BIND_IP           server: default 127.0.0.1
#   AGENT_CMD_FILE          a file the agent reads commands from: every complete line appended to it
#                           (with or without the "CMD " prefix) is a command, read every frame
#   AGENT_TIMEOUT           seconds, default 30; then prints TIMEOUT and exits with code 3
#   AGENT_SLEEP_USEC        main loop sleep per frame in microseconds, default 1000 (Godot: 6900)
#   AGENT_AUTORUN           commands separated by ';', run once READY was printed and
#                           AGENT_AUTORUN_AFTER_PEERS (default 0) PEER_CONNECTED events were seen
#   AGENT_EXIT_ON_DISCONNECT  1: exit after CONNECTION_FAILED (code 4) / SERVER_DISCONNECTED (code 0)
#
# Output: one line per event on stdout:
#   READY id=<id>   PEER_CONNECTED <id>   PEER_DISCONNECTED <id>   CONNECTION_SUCCEEDED
#   CONNECTION_FAILED   SERVER_DISCONNECTED
#   RECV from=<id> channel=<c> text=<utf8>
#       c: the ENet channel; -1 on WebSocket (it has no channels). A payload over 512 bytes is
#       printed as text=BIG len=<n> fnv=<fnv1a-32 of its bytes, 8 hex digits>.
#   RPC from=<sender> method=<name> text=<argument>     (one String argument: itself; else str(args))
#   EXEC <command>   SENT <mode> <target> <channel> <text>   SENT_SEQ <mode> <target> <count> <prefix>
#   SENT_BIG <target> len=<n> fnv=<hex>   SENT_RPC <target> <method> <text>   ECHO <text>
#   LEFT   AUTORUN   QUIT   TIMEOUT   ERROR <message>
# In RECV/RPC/SENT/ECHO/EXEC text, "\n" and "\r" are written as the two characters \n and \r.
#
# Commands: packets from any sender whose payload (after the RAW byte with AGENT_API=1) starts
# with "CMD " (never printed as RECV), lines of AGENT_CMD_FILE, and AGENT_AUTORUN:
#   send <reliable|unreliable|ordered> <target> <channel> <text...>
#                          one packet to target (0 all, -id all but id); channel as agent.gd
#                          (ENet: 0 = pick from the mode); WebSocket has no channels: only 0
#   sendseq <mode> <target> <count> <prefix>   packets "<prefix> 0" .. "<prefix> <count-1>", in
#                          one frame, in order
#   sendbig <target> <len> <seed>   one packet of len bytes, byte i = (i * 7 + seed) % 256
#   rpc <target> <method> <text>    /root/Echo rpc_id(target, method, text); target 0: rpc(...)
#   kick <id> [now]        (server only) disconnect_peer
#   refuse <1|0>           refuse_new_connections
#   wait <ms>              delay the following commands (the agent keeps polling)
#   echo <text>            prints ECHO <text> (a barrier for tests)
#   leave                  closes the connection (disconnect_from_host / stop / close_connection),
#                          prints LEFT and keeps running
#   quit                   prints QUIT, closes the connection, exit code 0
#
# The RPC surface (node /root/Echo, every method `remote`): hello(text), welcome(id) and
# echoed(a0..a3) / echoed_from(sender, a0..a3) (what examples/echo_server.rs answers); each
# prints an RPC line with the sender Godot reports (get_rpc_sender_id()).
extends SceneTree

const BIG = 512

var peer = null
var is_server = false
var is_ws = true
var api = true
var do_poll = true
var channels = 3
var start_ms = 0
var timeout_ms = 30000
var finished = false
var quitting = false
var exit_code = 0
var ready_printed = false
var exit_on_disconnect = false
var left = false
var peers_seen = 0
var connected = {}
var autorun = []
var autorun_after = 0
var autorun_queued = false
var queue = []
var wait_until = 0
var cmd_file = ""
var cmd_offset = 0
var cmd_next_check = 0
var echo_node = null
var modes = {
	"reliable": NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE,
	"unreliable": NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE,
	"ordered": NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED,
}


class EchoNode extends Node:
	var main = null
	var MISSING = Reference.new()

	func args_of(list):
		var got = []
		for x in list:
			if typeof(x) == TYPE_OBJECT and x == MISSING:
				break
			got.append(x)
		return got

	remote func hello(text):
		main.got_rpc("hello", [text])

	remote func welcome(id):
		main.got_rpc("welcome", [id])

	remote func echoed(a0 = MISSING, a1 = MISSING, a2 = MISSING, a3 = MISSING):
		main.got_rpc("echoed", args_of([a0, a1, a2, a3]))

	remote func echoed_from(sender, a0 = MISSING, a1 = MISSING, a2 = MISSING, a3 = MISSING):
		main.got_rpc("echoed_from", [sender] + args_of([a0, a1, a2, a3]))


func out(line):
	print(line)


func one_line(text):
	return text.replace("\n", "\\n").replace("\r", "\\r")


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


# Ends the run at the next _idle: closing the peer inside one of its signals (emitted from
# poll()) crashes Godot 3.2 ("double free or corruption").
func stop_agent(code):
	if finished:
		return
	finished = true
	exit_code = code


func fail(message):
	out("ERROR " + message)
	stop_agent(2)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	var sleep_usec = env_int("AGENT_SLEEP_USEC", 1000, 0, 1000000)
	if sleep_usec == null:
		stop_agent(2)
		return
	OS.low_processor_usage_mode_sleep_usec = sleep_usec

	var role = env_str("AGENT_ROLE", "")
	if role != "server" and role != "client":
		fail("AGENT_ROLE must be server or client, got '%s'" % role)
		return
	is_server = role == "server"
	var transport = env_str("AGENT_TRANSPORT", "websocket")
	if transport != "websocket" and transport != "enet":
		fail("AGENT_TRANSPORT must be websocket or enet, got '%s'" % transport)
		return
	is_ws = transport == "websocket"

	var port = env_int("AGENT_PORT", null, 1, 65535)
	var timeout_s = env_int("AGENT_TIMEOUT", 30, 0, 100000)
	var api_flag = env_int("AGENT_API", 1, 0, 1)
	var poll_flag = env_int("AGENT_POLL", 1, 0, 1)
	channels = env_int("AGENT_CHANNELS", 3, 3, 255)
	autorun_after = env_int("AGENT_AUTORUN_AFTER_PEERS", 0, 0, 4096)
	var exit_flag = env_int("AGENT_EXIT_ON_DISCONNECT", 0, 0, 1)
	for v in [timeout_s, api_flag, poll_flag, channels, autorun_after, exit_flag]:
		if v == null:
			stop_agent(2)
			return
	if port == null:
		fail("AGENT_PORT must be set to a port number")
		return
	timeout_ms = timeout_s * 1000
	api = api_flag == 1
	do_poll = poll_flag == 1
	exit_on_disconnect = exit_flag == 1
	cmd_file = env_str("AGENT_CMD_FILE", "")
	var address = env_str("AGENT_ADDRESS", "127.0.0.1")

	for c in env_str("AGENT_AUTORUN", "").split(";", false):
		var cmd = strip_cmd(c)
		if cmd != "":
			autorun.append(cmd)

	echo_node = EchoNode.new()
	echo_node.name = "Echo"
	echo_node.main = self
	root.add_child(echo_node)

	var err = OK
	if is_ws:
		if is_server:
			peer = WebSocketServer.new()
			peer.bind_ip = env_str("AGENT_BIND_IP", "127.0.0.1")
			err = peer.listen(port, PoolStringArray(), true)
			if err != OK:
				fail("WebSocketServer.listen(%d) failed: error %d" % [port, err])
				return
		else:
			peer = WebSocketClient.new()
			var url = env_str("AGENT_URL", "ws://%s:%d/" % [address, port])
			err = peer.connect_to_url(url, PoolStringArray(), true)
			if err != OK:
				fail("WebSocketClient.connect_to_url(%s) failed: error %d" % [url, err])
				return
	else:
		var compression = env_str("AGENT_COMPRESSION", "none")
		if compression != "none" and compression != "range":
			fail("AGENT_COMPRESSION must be none or range, got '%s'" % compression)
			return
		peer = NetworkedMultiplayerENet.new()
		peer.set_channel_count(channels)
		if compression == "range":
			peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_RANGE_CODER)
		else:
			peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
		if is_server:
			peer.set_bind_ip(env_str("AGENT_BIND_IP", "127.0.0.1"))
			err = peer.create_server(port, 32)
			if err != OK:
				fail("create_server(%d) failed: error %d" % [port, err])
				return
		else:
			err = peer.create_client(address, port)
			if err != OK:
				fail("create_client(%s, %d) failed: error %d" % [address, port, err])
				return

	if api:
		set_network_peer(peer)
		multiplayer.connect("network_peer_connected", self, "_on_peer_connected")
		multiplayer.connect("network_peer_disconnected", self, "_on_peer_disconnected")
		multiplayer.connect("connected_to_server", self, "_on_connection_succeeded")
		multiplayer.connect("connection_failed", self, "_on_connection_failed")
		multiplayer.connect("server_disconnected", self, "_on_server_disconnected")
		multiplayer.connect("network_peer_packet", self, "_on_packet")
	else:
		peer.connect("peer_connected", self, "_on_peer_connected")
		peer.connect("peer_disconnected", self, "_on_peer_disconnected")
		peer.connect("connection_succeeded", self, "_on_connection_succeeded")
		peer.connect("connection_failed", self, "_on_connection_failed")
		peer.connect("server_disconnected", self, "_on_server_disconnected")
	if is_server:
		print_ready()


func strip_cmd(c):
	var cmd = c.strip_edges()
	if cmd.begins_with("CMD "):
		cmd = cmd.substr(4, cmd.length() - 4)
	return cmd


func my_id():
	if api:
		return get_network_unique_id()
	return peer.get_unique_id()


func print_ready():
	ready_printed = true
	out("READY id=%d" % my_id())


func _on_peer_connected(id):
	connected[id] = true
	peers_seen += 1
	out("PEER_CONNECTED %d" % id)


func _on_peer_disconnected(id):
	connected.erase(id)
	out("PEER_DISCONNECTED %d" % id)


func _on_connection_succeeded():
	out("CONNECTION_SUCCEEDED")
	print_ready()


func _on_connection_failed():
	out("CONNECTION_FAILED")
	if exit_on_disconnect:
		stop_agent(4)


func _on_server_disconnected():
	connected.clear()
	out("SERVER_DISCONNECTED")
	if exit_on_disconnect:
		stop_agent(0)


# AGENT_API=1: a raw packet (send_bytes) from `id`, the RAW byte already removed.
func _on_packet(id, bytes):
	var channel = -1
	if not is_ws:
		channel = peer.get_last_packet_channel()
	got_packet(id, channel, bytes)


func got_packet(from, channel, bytes):
	if bytes.size() > BIG:
		out("RECV from=%d channel=%d text=BIG len=%d fnv=%s" % [from, channel, bytes.size(),
				fnv1a(bytes)])
		return
	var text = bytes.get_string_from_utf8()
	if text.begins_with("CMD "):
		queue.append(text.substr(4, text.length() - 4))
	else:
		out("RECV from=%d channel=%d text=%s" % [from, channel, one_line(text)])


func got_rpc(method, args):
	var text = ""
	if args.size() == 1 and typeof(args[0]) == TYPE_STRING:
		text = args[0]
	else:
		text = str(args)
	out("RPC from=%d method=%s text=%s" % [multiplayer.get_rpc_sender_id(), method, one_line(text)])


func fnv1a(bytes):
	var h = 2166136261
	for b in bytes:
		h = ((h ^ b) * 16777619) & 0xffffffff
	return "%08x" % h


func _idle(_delta):
	if finished:
		if not quitting:
			quitting = true
			close_peer()
			quit(exit_code)
		return
	if timeout_ms > 0 and OS.get_ticks_msec() - start_ms > timeout_ms:
		out("TIMEOUT")
		stop_agent(3)
		return
	read_cmd_file()
	if api:
		# The tree polls the peer right after _idle and flushes what the commands queued.
		maybe_autorun()
		run_queue(false)
		return
	# A bare peer: poll and read it here, several times per frame while there is work.
	var rounds = 0
	while rounds < 64 and not finished:
		rounds += 1
		if do_poll and not left and peer.get_connection_status() != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
			peer.poll()
		var received = drain()
		maybe_autorun()
		var ran = run_queue(true)
		if received == 0 and not ran:
			break


func close_peer():
	if peer == null or left:
		return
	left = true
	if is_ws:
		if is_server:
			peer.stop()
		else:
			peer.disconnect_from_host()
	elif peer.get_connection_status() != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
		peer.close_connection()


# AGENT_API=0: reads every packet the peer holds.
func drain():
	var n = 0
	while not finished and peer.get_available_packet_count() > 0:
		# get_packet_peer()/get_packet_channel() describe the next packet: call them first.
		var from = peer.get_packet_peer()
		var channel = -1
		if not is_ws:
			channel = peer.get_packet_channel()
		var pkt = peer.get_packet()
		n += 1
		var err = peer.get_packet_error()
		if err != OK:
			out("ERROR get_packet failed: error %d" % err)
			continue
		got_packet(from, channel, pkt)
	return n


func read_cmd_file():
	if cmd_file == "" or OS.get_ticks_msec() < cmd_next_check:
		return
	cmd_next_check = OS.get_ticks_msec() + 2
	var f = File.new()
	if not f.file_exists(cmd_file) or f.open(cmd_file, File.READ) != OK:
		return
	var size = f.get_len()
	if size > cmd_offset:
		f.seek(cmd_offset)
		var buf = f.get_buffer(size - cmd_offset)
		var end = buf.size() - 1
		while end >= 0 and buf[end] != 10:
			end -= 1
		# Only complete lines: the writer may be in the middle of one.
		if end >= 0:
			cmd_offset += end + 1
			for line in buf.subarray(0, end).get_string_from_utf8().split("\n", false):
				var c = strip_cmd(line)
				if c != "":
					queue.append(c)
	f.close()


func maybe_autorun():
	if autorun_queued or autorun.empty() or not ready_printed or peers_seen < autorun_after:
		return
	autorun_queued = true
	out("AUTORUN")
	for c in autorun:
		queue.append(c)


# Runs queued commands. With `stop_after_send` (a bare peer) it stops after a send so that the
# caller polls (flushes) before the next one.
func run_queue(stop_after_send):
	var ran = false
	while not finished and not queue.empty():
		if OS.get_ticks_msec() < wait_until:
			break
		var c = queue.pop_front()
		ran = true
		if execute(c) and stop_after_send:
			break
	return ran


# Returns true when the command sent something.
func execute(c):
	out("EXEC " + one_line(c))
	var parts = c.split(" ", true, 4)
	var verb = parts[0]
	if verb == "send":
		return cmd_send(c, parts)
	elif verb == "sendseq":
		return cmd_sendseq(c, parts)
	elif verb == "sendbig":
		return cmd_sendbig(c, parts)
	elif verb == "rpc":
		return cmd_rpc(c, c.split(" ", true, 3))
	elif verb == "kick":
		cmd_kick(c, parts)
	elif verb == "refuse":
		if parts.size() != 2 or not (parts[1] == "1" or parts[1] == "0"):
			out("ERROR usage: refuse 1|0 (%s)" % one_line(c))
		else:
			peer.set_refuse_new_connections(parts[1] == "1")
	elif verb == "wait":
		if parts.size() != 2 or not parts[1].is_valid_integer() or int(parts[1]) < 0:
			out("ERROR usage: wait <ms> (%s)" % one_line(c))
		else:
			wait_until = OS.get_ticks_msec() + int(parts[1])
	elif verb == "echo":
		var rest = ""
		if c.length() > 5:
			rest = c.substr(5, c.length() - 5)
		out("ECHO " + one_line(rest))
	elif verb == "leave":
		close_peer()
		out("LEFT")
	elif verb == "quit":
		out("QUIT")
		stop_agent(0)
	else:
		out("ERROR unknown command: " + one_line(c))
	return false


# Sends `bytes` to `target` the way this agent sends (send_bytes, or the bare peer's put_packet).
func put(bytes, target, mode, channel):
	if not is_ws:
		# Godot 3.2 rejects transfer_channel 0 ("reserved"); -1 is its "pick from the mode".
		peer.set_transfer_channel(-1 if channel == 0 else channel)
	if api:
		return multiplayer.send_bytes(bytes, target, mode)
	peer.set_transfer_mode(mode)
	peer.set_target_peer(target)
	return peer.put_packet(bytes)


func check_channel(c, channel_text):
	if not channel_text.is_valid_integer():
		out("ERROR invalid channel '%s' (%s)" % [channel_text, one_line(c)])
		return false
	var channel = int(channel_text)
	if is_ws and channel != 0:
		out("ERROR WebSocket has no channels: channel must be 0 (%s)" % one_line(c))
		return false
	if not is_ws and (channel < -1 or channel >= channels):
		out("ERROR invalid channel %d: channel_count is %d (%s)" % [channel, channels, one_line(c)])
		return false
	return true


func cmd_send(c, parts):
	if parts.size() < 4:
		out("ERROR usage: send <reliable|unreliable|ordered> <target> <channel> <text> (%s)" % one_line(c))
		return false
	if not modes.has(parts[1]):
		out("ERROR unknown transfer mode '%s' (%s)" % [parts[1], one_line(c)])
		return false
	if not parts[2].is_valid_integer():
		out("ERROR invalid target '%s' (%s)" % [parts[2], one_line(c)])
		return false
	if not check_channel(c, parts[3]):
		return false
	var text = ""
	if parts.size() > 4:
		text = parts[4]
	var target = int(parts[2])
	var err = put(text.to_utf8(), target, modes[parts[1]], int(parts[3]))
	if err != OK:
		out("ERROR put_packet failed: error %d (%s)" % [err, one_line(c)])
		return false
	out("SENT %s %d %s %s" % [parts[1], target, parts[3], one_line(text)])
	return true


func cmd_sendseq(c, parts):
	if parts.size() != 5 or not modes.has(parts[1]) or not parts[2].is_valid_integer() \
			or not parts[3].is_valid_integer() or int(parts[3]) < 0:
		out("ERROR usage: sendseq <mode> <target> <count> <prefix> (%s)" % one_line(c))
		return false
	var target = int(parts[2])
	var n = int(parts[3])
	for i in range(n):
		var err = put(("%s %d" % [parts[4], i]).to_utf8(), target, modes[parts[1]], 0)
		if err != OK:
			out("ERROR put_packet failed at %d: error %d (%s)" % [i, err, one_line(c)])
			return false
	out("SENT_SEQ %s %d %d %s" % [parts[1], target, n, one_line(parts[4])])
	return true


func cmd_sendbig(c, parts):
	if parts.size() != 4 or not parts[1].is_valid_integer() or not parts[2].is_valid_integer() \
			or int(parts[2]) < 1 or not parts[3].is_valid_integer():
		out("ERROR usage: sendbig <target> <len> <seed> (%s)" % one_line(c))
		return false
	var target = int(parts[1])
	var n = int(parts[2])
	var seed_value = int(parts[3])
	var bytes = PoolByteArray()
	bytes.resize(n)
	for i in range(n):
		bytes[i] = (i * 7 + seed_value) % 256
	var err = put(bytes, target, NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE, 0)
	if err != OK:
		out("ERROR put_packet failed: error %d (%s)" % [err, one_line(c)])
		return false
	out("SENT_BIG %d len=%d fnv=%s" % [target, n, fnv1a(bytes)])
	return true


func cmd_rpc(c, parts):
	if not api:
		out("ERROR rpc needs AGENT_API=1 (%s)" % one_line(c))
		return false
	if parts.size() < 3 or not parts[1].is_valid_integer():
		out("ERROR usage: rpc <target> <method> <text> (%s)" % one_line(c))
		return false
	var target = int(parts[1])
	var text = ""
	if parts.size() > 3:
		text = parts[3]
	if target == 0:
		echo_node.rpc(parts[2], text)
	else:
		echo_node.rpc_id(target, parts[2], text)
	out("SENT_RPC %d %s %s" % [target, parts[2], one_line(text)])
	return true


func cmd_kick(c, parts):
	if not is_server:
		out("ERROR kick is server only (%s)" % one_line(c))
		return
	if parts.size() < 2 or parts.size() > 3 or not parts[1].is_valid_integer():
		out("ERROR usage: kick <id> [now] (%s)" % one_line(c))
		return
	var id = int(parts[1])
	if not connected.has(id):
		out("ERROR kick: no connected peer %d" % id)
		return
	if is_ws:
		peer.disconnect_peer(id)
	else:
		peer.disconnect_peer(id, parts.size() == 3 and parts[2] == "now")
