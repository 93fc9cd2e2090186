# Scriptable NetworkedMultiplayerENet agent for the interop tests (Godot 3.2 API).
#
# Run headless:  godot3-server --path tests/godot -s res://agent.gd
# Configured only through environment variables (Godot parses its own options even after `--`):
#   AGENT_ROLE              server | client                        (required)
#   AGENT_PORT              listen port (server) / port to connect to (client)   (required)
#   AGENT_ADDRESS           client: server address, default 127.0.0.1
#   AGENT_COMPRESSION       none (default) | range | fastlz | zlib | zstd
#   AGENT_RELAY             1 (default) | 0          server_relay
#   AGENT_CHANNELS          ENet channel_count, default 4 (>= 3)
#   AGENT_MAX_CLIENTS       server: max clients, default 32
#   AGENT_TIMEOUT           seconds, default 30; then prints TIMEOUT and exits with code 3
#   AGENT_BIND_IP           set_bind_ip; default 127.0.0.1 for a server, * (any) for a client
#   AGENT_SLEEP_USEC        main loop sleep per frame in microseconds, default 1000 (Godot: 6900)
#   AGENT_AUTORUN           commands (without the "CMD " prefix) separated by ';', run once
#                           READY was printed and AGENT_AUTORUN_AFTER_PEERS (default 0)
#                           PEER_CONNECTED events were seen (a client counts peer 1 too)
#   AGENT_EXIT_ON_DISCONNECT  1: exit after CONNECTION_FAILED (code 4) / SERVER_DISCONNECTED (code 0)
#
# Output: one line per event on stdout (print(); this Debian build flushes stdout on every line):
#   READY id=<id>   PEER_CONNECTED <id>   PEER_DISCONNECTED <id>   CONNECTION_SUCCEEDED
#   CONNECTION_FAILED   SERVER_DISCONNECTED   RECV from=<id> channel=<enet channel> text=<utf8>
#   EXEC <command>   SENT <mode> <target> <channel> <text>   ECHO <text>   AUTORUN
#   QUIT   TIMEOUT   ERROR <message>
# In RECV/SENT/ECHO/EXEC text, "\n" and "\r" are written as the two characters \n and \r.
#
# Commands: packets from any sender whose UTF-8 payload starts with "CMD " (never printed as RECV):
#   send <reliable|unreliable|ordered> <target> <channel> <text...>
#                          set_target_peer(target); transfer_channel = channel (0 is sent as -1,
#                          "pick from the mode", because Godot 3.2 rejects 0); put_packet(text)
#   kick <id> [now]        (server only) disconnect_peer(id, now)
#   refuse <1|0>           refuse_new_connections
#   wait <ms>              delay the following commands (the agent keeps polling)
#   echo <text>            prints ECHO <text> (a barrier for tests)
#   quit                   prints QUIT, close_connection(), exit code 0
extends SceneTree

var peer = null
var is_server = false
var channels = 4
var start_ms = 0
var timeout_ms = 30000
var finished = false
var ready_printed = false
var exit_on_disconnect = false
var peers_seen = 0
var connected = {}
var autorun = []
var autorun_after = 0
var autorun_queued = false
var queue = []
var wait_until = 0
var modes = {
	"reliable": NetworkedMultiplayerPeer.TRANSFER_MODE_RELIABLE,
	"unreliable": NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE,
	"ordered": NetworkedMultiplayerPeer.TRANSFER_MODE_UNRELIABLE_ORDERED,
}


func out(line):
	print(line)


func one_line(text):
	return text.replace("\n", "\\n").replace("\r", "\\r")


func env_str(name, default_value):
	var v = OS.get_environment(name)
	if v == "":
		return default_value
	return v


# Returns the integer value of env var `name`, or null (after printing ERROR) when it is invalid.
func env_int(name, default_value, min_value, max_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "":
		return default_value
	if not v.is_valid_integer() or int(v) < min_value or int(v) > max_value:
		out("ERROR invalid %s=%s (expected an integer in %d..%d)" % [name, v, min_value, max_value])
		return null
	return int(v)


func stop_agent(code):
	finished = true
	quit(code)


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

	var port = env_int("AGENT_PORT", null, 1, 65535)
	var timeout_s = env_int("AGENT_TIMEOUT", 30, 0, 100000)
	var max_clients = env_int("AGENT_MAX_CLIENTS", 32, 1, 4095)
	var relay = env_int("AGENT_RELAY", 1, 0, 1)
	channels = env_int("AGENT_CHANNELS", 4, 3, 255)
	autorun_after = env_int("AGENT_AUTORUN_AFTER_PEERS", 0, 0, 4096)
	var exit_flag = env_int("AGENT_EXIT_ON_DISCONNECT", 0, 0, 1)
	for v in [timeout_s, max_clients, relay, channels, autorun_after, exit_flag]:
		if v == null:
			stop_agent(2)
			return
	if port == null:
		fail("AGENT_PORT must be set to a port number")
		return
	timeout_ms = timeout_s * 1000
	exit_on_disconnect = exit_flag == 1
	var address = env_str("AGENT_ADDRESS", "127.0.0.1")

	var compression_name = env_str("AGENT_COMPRESSION", "none")
	var compressions = {
		"none": NetworkedMultiplayerENet.COMPRESS_NONE,
		"range": NetworkedMultiplayerENet.COMPRESS_RANGE_CODER,
		"fastlz": NetworkedMultiplayerENet.COMPRESS_FASTLZ,
		"zlib": NetworkedMultiplayerENet.COMPRESS_ZLIB,
		"zstd": NetworkedMultiplayerENet.COMPRESS_ZSTD,
	}
	if not compressions.has(compression_name):
		fail("AGENT_COMPRESSION must be none or range, got '%s'" % compression_name)
		return

	for c in env_str("AGENT_AUTORUN", "").split(";", false):
		var cmd = c.strip_edges()
		if cmd.begins_with("CMD "):
			cmd = cmd.substr(4, cmd.length() - 4)
		if cmd != "":
			autorun.append(cmd)

	peer = NetworkedMultiplayerENet.new()
	# channel_count must be set before create_*; compression and relay may be set at any time.
	peer.set_channel_count(channels)
	peer.set_compression_mode(compressions[compression_name])
	peer.set_server_relay_enabled(relay == 1)
	peer.connect("peer_connected", self, "_on_peer_connected")
	peer.connect("peer_disconnected", self, "_on_peer_disconnected")
	peer.connect("connection_succeeded", self, "_on_connection_succeeded")
	peer.connect("connection_failed", self, "_on_connection_failed")
	peer.connect("server_disconnected", self, "_on_server_disconnected")

	# The server listens on loopback only unless told otherwise; the client binds like Godot does.
	var bind_ip = env_str("AGENT_BIND_IP", "127.0.0.1" if is_server else "*")
	if bind_ip != "*":
		peer.set_bind_ip(bind_ip)

	if is_server:
		var err = peer.create_server(port, max_clients)
		if err != OK:
			fail("create_server(%d, %d) failed: error %d" % [port, max_clients, err])
			return
		print_ready()
	else:
		var err = peer.create_client(address, port)
		if err != OK:
			fail("create_client(%s, %d) failed: error %d" % [address, port, err])
			return


func print_ready():
	ready_printed = true
	out("READY id=%d" % peer.get_unique_id())


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


func _idle(_delta):
	if finished:
		return
	if OS.get_ticks_msec() - start_ms > timeout_ms:
		out("TIMEOUT")
		stop_agent(3)
		return
	# Poll several times per frame while there is work, so that replies leave at once.
	var rounds = 0
	while rounds < 64 and not finished:
		rounds += 1
		# A client that failed or lost its server is inactive; poll() would only log errors.
		if peer.get_connection_status() != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
			peer.poll()
		var received = drain()
		maybe_autorun()
		var ran = run_queue()
		if received == 0 and not ran:
			break


func drain():
	var n = 0
	while not finished and peer.get_available_packet_count() > 0:
		# get_packet_peer()/get_packet_channel() describe the next packet: call them first.
		var from = peer.get_packet_peer()
		var channel = peer.get_packet_channel()
		var pkt = peer.get_packet()
		n += 1
		var err = peer.get_packet_error()
		if err != OK:
			out("ERROR get_packet failed: error %d" % err)
			continue
		var text = pkt.get_string_from_utf8()
		if text.begins_with("CMD "):
			queue.append(text.substr(4, text.length() - 4))
		else:
			out("RECV from=%d channel=%d text=%s" % [from, channel, one_line(text)])
	return n


func maybe_autorun():
	if autorun_queued or autorun.empty() or not ready_printed or peers_seen < autorun_after:
		return
	autorun_queued = true
	out("AUTORUN")
	for c in autorun:
		queue.append(c)


# Runs queued commands; stops after a send so that the caller polls (flushes) before the next one.
func run_queue():
	var ran = false
	while not finished and not queue.empty():
		if OS.get_ticks_msec() < wait_until:
			break
		var c = queue.pop_front()
		ran = true
		if execute(c):
			break
	return ran


# Returns true when the command sent a packet.
func execute(c):
	out("EXEC " + one_line(c))
	var parts = c.split(" ", true, 4)
	var verb = parts[0]
	if verb == "send":
		return cmd_send(c, parts)
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
	elif verb == "quit":
		out("QUIT")
		if peer.get_connection_status() != NetworkedMultiplayerPeer.CONNECTION_DISCONNECTED:
			peer.close_connection()
		stop_agent(0)
	else:
		out("ERROR unknown command: " + one_line(c))
	return false


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
	if not parts[3].is_valid_integer() or int(parts[3]) < -1 or int(parts[3]) >= channels:
		out("ERROR invalid channel '%s': channel_count is %d (%s)" % [parts[3], channels, one_line(c)])
		return false
	var text = ""
	if parts.size() > 4:
		text = parts[4]
	var target = int(parts[2])
	var channel = int(parts[3])
	peer.set_transfer_mode(modes[parts[1]])
	peer.set_target_peer(target)
	# Godot 3.2 rejects transfer_channel 0 ("reserved"); -1 is its "pick from the mode".
	if channel == 0:
		peer.set_transfer_channel(-1)
	else:
		peer.set_transfer_channel(channel)
	var err = peer.put_packet(text.to_utf8())
	if err != OK:
		out("ERROR put_packet failed: error %d (%s)" % [err, one_line(c)])
		return false
	out("SENT %s %d %d %s" % [parts[1], target, channel, one_line(text)])
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
	peer.disconnect_peer(id, parts.size() == 3 and parts[2] == "now")
