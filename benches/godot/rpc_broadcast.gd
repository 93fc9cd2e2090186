# Broadcast-RPC client: a plain Godot 3.2 NetworkedMultiplayerENet client (no compression) with a
# node /root/Room that has `remote func hit(a, b)`. It waits until it has seen RPC_PEERS other
# clients (network_peer_connected, the server not counted), settles, then calls
# `rpc("hit", i, "some text")` RPC_COUNT times: one call first, a pause so that the node path
# confirmations (SIMPLIFY_PATH / CONFIRM_PATH, MULTIPLAYER_API.md) can come back, then the rest
# spaced by RPC_GAP_MS. It counts the hit calls it receives and quits once every other client's
# RPC_COUNT hits have arrived (so every client has finished sending) and a short linger has passed.
# Used by scripts/bench_rpc_paths.sh to count what a Godot client puts on the wire per broadcast.
#
# Run headless:  godot3-server --no-window --path benches/godot -s res://rpc_broadcast.gd
# Environment variables (Godot parses its own options even after `--`):
#   RPC_PORT            server port (required)
#   RPC_HOST            default 127.0.0.1
#   RPC_PEERS           other clients to wait for, default 7
#   RPC_COUNT           broadcast RPCs to send, default 200 (0: connect, mesh, settle, quit)
#   RPC_SETTLE_MS       pause after the mesh is complete, default 500
#   RPC_CONFIRM_WAIT_MS pause after the first RPC, for the path confirmations, default 500
#   RPC_GAP_MS          spacing of the other RPCs, default 5
#   RPC_LINGER_MS       stay connected this long once done, default 500
#   RPC_SLEEP_USEC      OS.low_processor_usage_mode_sleep_usec, default 1000 (Godot: 6900)
#   RPC_TIMEOUT         seconds before it gives up, default 30
# Output: "MESHED peers=<n> t_ms=<ms>", "SENT <n>", "GOT <n>" (hits received, all senders),
# "GOT_MIN <n>" (fewest hits from one sender), then "DONE" or "TIMEOUT" (exit code 3).
extends SceneTree


class Room:
	extends Node
	var got = 0
	var per_sender = {}

	remote func hit(_a, _b):
		got += 1
		var from = get_tree().get_rpc_sender_id()
		per_sender[from] = per_sender.get(from, 0) + 1


var peer = null
var room = null
var start_ms = 0
var timeout_ms = 30000
var peers_wanted = 7
var count = 200
var settle_ms = 500
var confirm_wait_ms = 500
var gap_ms = 5
var linger_ms = 500
var others = {}
var state = "connecting"
var state_ms = 0
var sent = 0
var next_send_ms = 0
var finished = false


func env_int(name, default_value):
	var v = OS.get_environment(name).strip_edges()
	if v == "" or not v.is_valid_integer():
		return default_value
	return int(v)


func _init():
	start_ms = OS.get_ticks_msec()
	Engine.target_fps = 0
	OS.low_processor_usage_mode_sleep_usec = env_int("RPC_SLEEP_USEC", 1000)
	timeout_ms = env_int("RPC_TIMEOUT", 30) * 1000
	peers_wanted = env_int("RPC_PEERS", 7)
	count = env_int("RPC_COUNT", 200)
	settle_ms = env_int("RPC_SETTLE_MS", 500)
	confirm_wait_ms = env_int("RPC_CONFIRM_WAIT_MS", 500)
	gap_ms = env_int("RPC_GAP_MS", 5)
	linger_ms = env_int("RPC_LINGER_MS", 500)
	var port = env_int("RPC_PORT", 0)
	var host = OS.get_environment("RPC_HOST")
	if host == "":
		host = "127.0.0.1"
	if port <= 0:
		print("ERROR RPC_PORT must be set")
		finished = true
		quit(2)
		return
	room = Room.new()
	room.name = "Room"
	get_root().add_child(room)
	connect("network_peer_connected", self, "_on_peer_connected")
	connect("network_peer_disconnected", self, "_on_peer_disconnected")
	connect("connection_failed", self, "_on_connection_failed")
	connect("server_disconnected", self, "_on_server_disconnected")
	peer = NetworkedMultiplayerENet.new()
	peer.set_compression_mode(NetworkedMultiplayerENet.COMPRESS_NONE)
	var err = peer.create_client(host, port)
	if err != OK:
		print("ERROR create_client failed: error %d" % err)
		finished = true
		quit(2)
		return
	network_peer = peer


func _on_peer_connected(id):
	if id != 1:
		others[id] = true


func _on_peer_disconnected(id):
	others.erase(id)


func _on_connection_failed():
	print("ERROR connection_failed")
	end_run(4)


func _on_server_disconnected():
	print("ERROR server_disconnected")
	end_run(4)


func got_min():
	if others.empty():
		return 0
	var m = -1
	for id in others:
		var n = room.per_sender.get(id, 0)
		if m < 0 or n < m:
			m = n
	return m


func end_run(code):
	if finished:
		return
	finished = true
	print("SENT %d" % sent)
	print("GOT %d" % room.got)
	print("GOT_MIN %d" % got_min())
	if code == 0:
		print("DONE")
	elif code == 3:
		print("TIMEOUT state=%s peers=%d" % [state, others.size()])
	quit(code)


func enter(s, now):
	state = s
	state_ms = now


func _idle(_delta):
	if finished:
		return
	var now = OS.get_ticks_msec()
	if now - start_ms > timeout_ms:
		end_run(3)
		return
	match state:
		"connecting":
			if others.size() >= peers_wanted:
				print("MESHED peers=%d t_ms=%d" % [others.size(), now - start_ms])
				enter("settle", now)
		"settle":
			if now - state_ms >= settle_ms:
				if count <= 0:
					enter("linger", now)
				else:
					room.rpc("hit", sent, "some text")
					sent += 1
					enter("confirm_wait", now)
		"confirm_wait":
			if now - state_ms >= confirm_wait_ms:
				next_send_ms = now
				enter("sending", now)
		"sending":
			while sent < count and now >= next_send_ms:
				room.rpc("hit", sent, "some text")
				sent += 1
				next_send_ms += gap_ms
			if sent >= count:
				enter("receiving", now)
		"receiving":
			# Every other client's last hit has arrived: they have all finished sending.
			if got_min() >= count:
				enter("linger", now)
		"linger":
			if now - state_ms >= linger_ms:
				end_run(0)
