# Reference server for scripts/bench_rpc_paths.sh: Godot 3.2's own high-level multiplayer server
# (NetworkedMultiplayerENet, relay on, no compression) set as the SceneTree's network_peer, so its
# MultiplayerAPI answers SIMPLIFY_PATH the way a Godot game server does. It has the clients' node
# /root/Room with `remote func hit(a, b)` (so broadcast RPCs reaching it are not errors) and does
# nothing else.
#
# Run headless:  godot3-server --no-window --path benches/godot -s res://rpc_relay_server.gd
# Environment variables (Godot parses its own options even after `--`):
#   RPC_PORT        listen port (required)
#   RPC_BIND_IP     default 127.0.0.1
#   RPC_SLEEP_USEC  OS.low_processor_usage_mode_sleep_usec, default 0 (Godot: 6900)
#   RPC_TIMEOUT     seconds before it quits by itself, default 300
# Output: "READY port=<port>"; "SERVER_GOT <n>" (hit calls the server received) each time its
# last client leaves; "TIMEOUT" if it quits by itself.
extends SceneTree


class Room:
	extends Node
	var got = 0

	remote func hit(_a, _b):
		got += 1


var peer = null
var room = null
var start_ms = 0
var timeout_ms = 300000
var clients = 0
var done = false


func env_int(name, default_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "" or not v.is_valid_integer():
		return default_value
	return int(v)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	OS.low_processor_usage_mode_sleep_usec = env_int("RPC_SLEEP_USEC", 0)
	timeout_ms = env_int("RPC_TIMEOUT", 300) * 1000
	var port = env_int("RPC_PORT", 0)
	if port <= 0:
		print("ERROR RPC_PORT must be set")
		done = true
		quit(2)
		return
	room = Room.new()
	room.name = "Room"
	get_root().add_child(room)
	connect("network_peer_connected", self, "_on_peer_connected")
	connect("network_peer_disconnected", self, "_on_peer_disconnected")
	peer = NetworkedMultiplayerENet.new()
	peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
	peer.set_server_relay_enabled(true)
	var bind_ip = OS.get_environment("RPC_BIND_IP")
	if bind_ip == "":
		bind_ip = "127.0.0.1"
	peer.set_bind_ip(bind_ip)
	var err = peer.create_server(port, 32)
	if err != OK:
		print("ERROR create_server failed: error %d" % err)
		done = true
		quit(2)
		return
	network_peer = peer
	print("READY port=%d" % port)


func _on_peer_connected(_id):
	clients += 1


func _on_peer_disconnected(_id):
	clients -= 1
	if clients == 0:
		print("SERVER_GOT %d" % room.got)


func _idle(_delta):
	if done:
		return
	if OS.get_ticks_msec() - start_ms > timeout_ms:
		print("TIMEOUT")
		done = true
		quit(3)
