# A Godot 3.2 game client that joins a relay with a join token, as a game would: a
# NetworkedMultiplayerENet client as the tree's network_peer, its token sent with
# multiplayer.send_bytes once it has it (tests/relay_server.rs mints it for the id this client
# prints, and writes it to a file).
#
# Run headless:  godot3-server --path tests/godot -s res://token_client.gd
# Environment variables:
#   TOKEN_PORT      the relay's UDP port (required)
#   TOKEN_FILE      path of the file the token appears in (required); read once it exists
#   TOKEN_TIMEOUT   seconds before it quits by itself, default 30 (prints TIMEOUT, exit code 3)
# Output, one line per event:
#   READY id=<id>   CONNECTION_SUCCEEDED   TOKEN_SENT   PEER_CONNECTED <id>
#   PEER_DISCONNECTED <id>   SERVER_DISCONNECTED   CONNECTION_FAILED   RAW from=<id> <text>
#   TIMEOUT   ERROR <message>
# It exits with code 0 after SERVER_DISCONNECTED or CONNECTION_FAILED.
extends SceneTree

var peer = null
var token_path = ""
var token_sent = false
var connected = false
var start_ms = 0
var timeout_ms = 30000
var done = false


func _init():
	start_ms = OS.get_ticks_msec()
	OS.low_processor_usage_mode_sleep_usec = 1000
	var port = int(OS.get_environment("TOKEN_PORT"))
	token_path = OS.get_environment("TOKEN_FILE")
	var secs = OS.get_environment("TOKEN_TIMEOUT")
	if secs.is_valid_integer():
		timeout_ms = int(secs) * 1000
	if port <= 0 or token_path == "":
		print("ERROR TOKEN_PORT and TOKEN_FILE must be set")
		stop_with(2)
		return
	peer = NetworkedMultiplayerENet.new()
	var err = peer.create_client("127.0.0.1", port)
	if err != OK:
		print("ERROR create_client failed: %d" % err)
		stop_with(2)
		return
	network_peer = peer
	connect("connected_to_server", self, "_on_connected")
	connect("connection_failed", self, "_on_failed")
	connect("server_disconnected", self, "_on_server_disconnected")
	connect("network_peer_connected", self, "_on_peer_connected")
	connect("network_peer_disconnected", self, "_on_peer_disconnected")
	multiplayer.connect("network_peer_packet", self, "_on_packet")
	print("READY id=%d" % peer.get_unique_id())


func stop_with(code):
	done = true
	quit(code)


func _on_connected():
	connected = true
	print("CONNECTION_SUCCEEDED")


func _on_failed():
	print("CONNECTION_FAILED")
	stop_with(0)


func _on_server_disconnected():
	print("SERVER_DISCONNECTED")
	stop_with(0)


func _on_peer_connected(id):
	print("PEER_CONNECTED %d" % id)


func _on_peer_disconnected(id):
	print("PEER_DISCONNECTED %d" % id)


func _on_packet(id, bytes):
	print("RAW from=%d %s" % [id, bytes.get_string_from_utf8()])


func _idle(_delta):
	if done:
		return
	if OS.get_ticks_msec() - start_ms > timeout_ms:
		print("TIMEOUT")
		stop_with(3)
		return
	if connected and not token_sent:
		var f = File.new()
		if f.file_exists(token_path) and f.open(token_path, File.READ) == OK:
			var token = f.get_as_text().strip_edges()
			f.close()
			if token != "":
				multiplayer.send_bytes(token.to_utf8(), 1)
				token_sent = true
				print("TOKEN_SENT")
