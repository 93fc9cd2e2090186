# Benchmark server: a plain Godot 3.2 server, run the way a game server runs it.
#   BENCH_TRANSPORT=enet (default): a NetworkedMultiplayerENet server (relay on); this script
#     calls poll() once per frame, then takes every received packet (and drops it).
#   BENCH_TRANSPORT=ws: a WebSocketServer used as the game's network peer
#     (listen(port, PoolStringArray(), true)), relaying between its clients as Godot does; with
#     BENCH_API=1 (default) it is the tree's network_peer, so Godot's MultiplayerAPI polls it once
#     per frame and takes every packet it keeps for itself (Godot 3.2.3's server keeps a copy of
#     every broadcast). examples/ws_load.rs sends RAW packets (first payload byte 4, Godot's
#     NETWORK_COMMAND_RAW), which the MultiplayerAPI hands to `network_peer_packet` (nothing
#     listens). BENCH_API=0: a bare peer polled by this script, as for ENet. Godot's own
#     WebSocket limits stay at their defaults (64 KiB and 1024 packets of input and output
#     buffer per peer), as a game has them.
# Unlike tests/godot/agent.gd it prints nothing per packet, so stdout costs nothing.
#
# Run headless:  godot3-server --path benches/godot -s res://bench_server.gd
# Environment variables (Godot parses its own options even after `--`):
#   BENCH_PORT          listen port (required; TCP for ws)
#   BENCH_TRANSPORT     enet (default) | ws
#   BENCH_BIND_IP       default 127.0.0.1 ("*": every interface)
#   BENCH_SLEEP_USEC    OS.low_processor_usage_mode_sleep_usec, default 0 (Godot: 6900)
#   BENCH_TIMEOUT       seconds before it quits by itself, default 3600
#   ENet only:
#   BENCH_MAX_CLIENTS   max clients, default 1024
#   BENCH_CHANNELS      ENet channel_count, default 3 (Godot's default)
#   BENCH_COMPRESSION   none (default, Godot 3.2's default) | range
#   BENCH_RELAY         1 (default) | 0: set_server_relay_enabled
#   WebSocket only:
#   BENCH_API           1 (default) | 0, see above
# Output: "READY port=<port>" once listening; "TIMEOUT" if it quits by itself.
extends SceneTree

var peer = null
var poll_here = true
var start_ms = 0
var timeout_ms = 3600000
var done = false


func env_int(name, default_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "" or not v.is_valid_integer():
		return default_value
	return int(v)


func fail(message):
	print("ERROR " + message)
	done = true
	quit(2)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	OS.low_processor_usage_mode_sleep_usec = env_int("BENCH_SLEEP_USEC", 0)
	timeout_ms = env_int("BENCH_TIMEOUT", 3600) * 1000
	var port = env_int("BENCH_PORT", 0)
	if port <= 0:
		fail("BENCH_PORT must be set")
		return
	var bind_ip = OS.get_environment("BENCH_BIND_IP")
	if bind_ip == "":
		bind_ip = "127.0.0.1"
	var err = OK
	if OS.get_environment("BENCH_TRANSPORT") == "ws":
		peer = WebSocketServer.new()
		if bind_ip != "*":
			peer.bind_ip = bind_ip
		err = peer.listen(port, PoolStringArray(), true)
		if err != OK:
			fail("WebSocketServer.listen failed: error %d" % err)
			return
		if env_int("BENCH_API", 1) != 0:
			poll_here = false
			set_network_peer(peer)
	else:
		peer = NetworkedMultiplayerENet.new()
		peer.set_channel_count(env_int("BENCH_CHANNELS", 3))
		if OS.get_environment("BENCH_COMPRESSION") == "range":
			peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_RANGE_CODER)
		else:
			peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
		peer.set_server_relay_enabled(env_int("BENCH_RELAY", 1) != 0)
		if bind_ip != "*":
			peer.set_bind_ip(bind_ip)
		err = peer.create_server(port, env_int("BENCH_MAX_CLIENTS", 1024))
		if err != OK:
			fail("create_server failed: error %d" % err)
			return
	print("READY port=%d" % port)


func _idle(_delta):
	if done:
		return
	if OS.get_ticks_msec() - start_ms > timeout_ms:
		print("TIMEOUT")
		done = true
		quit(3)
		return
	if not poll_here:
		return
	peer.poll()
	while peer.get_available_packet_count() > 0:
		peer.get_packet()
