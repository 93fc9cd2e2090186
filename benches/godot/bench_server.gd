# Benchmark server: a plain Godot 3.2 NetworkedMultiplayerENet server (relay on), the way a
# game server runs it: poll() once per frame, then take every received packet (and drop it).
# Unlike tests/godot/agent.gd it prints nothing per packet, so stdout costs nothing.
#
# Run headless:  godot3-server --path benches/godot -s res://bench_server.gd
# Environment variables (Godot parses its own options even after `--`):
#   BENCH_PORT          listen port (required)
#   BENCH_MAX_CLIENTS   max clients, default 1024
#   BENCH_BIND_IP       default 127.0.0.1
#   BENCH_CHANNELS      ENet channel_count, default 3 (Godot's default)
#   BENCH_COMPRESSION   none (default, Godot 3.2's default) | range
#   BENCH_RELAY         1 (default) | 0: set_server_relay_enabled
#   BENCH_SLEEP_USEC    OS.low_processor_usage_mode_sleep_usec, default 0 (Godot: 6900)
#   BENCH_TIMEOUT       seconds before it quits by itself, default 3600
# Output: "READY port=<port>" once listening; "TIMEOUT" if it quits by itself.
extends SceneTree

var peer = null
var start_ms = 0
var timeout_ms = 3600000
var done = false


func env_int(name, default_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "" or not v.is_valid_integer():
		return default_value
	return int(v)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	OS.low_processor_usage_mode_sleep_usec = env_int("BENCH_SLEEP_USEC", 0)
	timeout_ms = env_int("BENCH_TIMEOUT", 3600) * 1000
	var port = env_int("BENCH_PORT", 0)
	if port <= 0:
		print("ERROR BENCH_PORT must be set")
		done = true
		quit(2)
		return
	peer = NetworkedMultiplayerENet.new()
	peer.set_channel_count(env_int("BENCH_CHANNELS", 3))
	if OS.get_environment("BENCH_COMPRESSION") == "range":
		peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_RANGE_CODER)
	else:
		peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
	peer.set_server_relay_enabled(env_int("BENCH_RELAY", 1) != 0)
	var bind_ip = OS.get_environment("BENCH_BIND_IP")
	if bind_ip == "":
		bind_ip = "127.0.0.1"
	if bind_ip != "*":
		peer.set_bind_ip(bind_ip)
	var err = peer.create_server(port, env_int("BENCH_MAX_CLIENTS", 1024))
	if err != OK:
		print("ERROR create_server failed: error %d" % err)
		done = true
		quit(2)
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
	peer.poll()
	while peer.get_available_packet_count() > 0:
		peer.get_packet()
