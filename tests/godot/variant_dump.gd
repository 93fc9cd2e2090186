# Variant codec oracle for tests/variant_engine.rs (Godot 3.2 API).
#
# Run headless:  godot3-server --no-window --path tests/godot -s res://variant_dump.gd
# Prints, for each named value below:
#   VALUE <name> <var2bytes(value).hex_encode()>
#   STR <name> <str(value)>
# Then, if VARIANT_DECODE_FILE names a file of "<name> <hex>" lines (bytes the Rust encoder
# wrote), for each line:
#   DECODED <name> <typeof(bytes2var(bytes))> <str(...)>   (an EncodedObjectAsID prints
#                                                          OBJECTID <id> as its str)
#   REENCODED <name> <var2bytes(bytes2var(bytes)).hex_encode()>
# and finally DONE. Exits by itself; the test still kills it after a bound.
extends SceneTree

func hex_to_bytes(h):
	var digits = "0123456789abcdef"
	var out = PoolByteArray()
	var i = 0
	while i + 1 < h.length():
		out.append(digits.find(h[i].to_lower()) * 16 + digits.find(h[i + 1].to_lower()))
		i += 2
	return out

func values(node, freed):
	var basis = Basis(Vector3(1, 2, 3), Vector3(4, 5, 6), Vector3(7, 8, 9))
	return [
		["nil", null],
		["bool_true", true],
		["bool_false", false],
		["int_0", 0],
		["int_neg", -12],
		["int_i32_max", 2147483647],
		["int_i32_max_plus_1", 2147483648],
		["int_i32_min", -2147483648],
		["int_i32_min_minus_1", -2147483649],
		["int_5e9", 5000000000],
		["int_i64_max", 9223372036854775807],
		["float_0_5", 0.5],
		["float_0_1", 0.1],
		["float_1e300", 1e300],
		["float_third", 1.0 / 3.0],
		["float_100", 100.0],
		["float_neg_zero", -0.0],
		["float_nan", NAN],
		["float_inf", INF],
		["float_neg_inf", -INF],
		["string_empty", ""],
		["string_ascii", "abc"],
		["string_four", "abcd"],
		["string_latin", "héllo ✓"],
		["string_cjk", "日本"],
		["vector2", Vector2(1, 2.5)],
		["rect2", Rect2(1, 2, 3, 4)],
		["vector3", Vector3(1, 2, 3)],
		["transform2d", Transform2D(Vector2(1, 2), Vector2(3, 4), Vector2(5, 6))],
		["plane", Plane(1, 2, 3, 4)],
		["quat", Quat(1, 2, 3, 4)],
		["aabb", AABB(Vector3(1, 2, 3), Vector3(4, 5, 6))],
		["basis", basis],
		["transform", Transform(basis, Vector3(10, 11, 12))],
		["color", Color(0.1, 0.2, 0.3, 0.4)],
		["nodepath_absolute", NodePath("/root/A/B:x:y")],
		["nodepath_relative", NodePath("A/B")],
		["nodepath_parent", NodePath("..")],
		["nodepath_property", NodePath(":prop")],
		["nodepath_empty", NodePath("")],
		["rid", RID()],
		["object", node],
		["object_freed", freed],
		["dictionary", {"a": 1, 2: [3]}],
		["array", [1, "a", Vector2(1, 2)]],
		["nested", [{"k": [1, [2, {}]]}, []]],
		["array_empty", []],
		["dictionary_empty", {}],
		["pool_byte", PoolByteArray([1, 2, 3])],
		["pool_int", PoolIntArray([1, -2, 2147483647])],
		["pool_real", PoolRealArray([0.5, 0.1])],
		["pool_string", PoolStringArray(["ab", "c", "", "日本"])],
		["pool_vector2", PoolVector2Array([Vector2(1, 2), Vector2(-3, 4.5)])],
		["pool_vector3", PoolVector3Array([Vector3(1, 2, 3)])],
		["pool_color", PoolColorArray([Color(1, 0, 0, 1), Color(0.1, 0.2, 0.3, 0.4)])],
		["pool_byte_empty", PoolByteArray()],
		["pool_int_empty", PoolIntArray()],
		["pool_real_empty", PoolRealArray()],
		["pool_string_empty", PoolStringArray()],
		["pool_vector2_empty", PoolVector2Array()],
		["pool_vector3_empty", PoolVector3Array()],
		["pool_color_empty", PoolColorArray()],
	]

func _init():
	var node = Node.new()
	var freed = Node.new()
	freed.free()
	for pair in values(node, freed):
		print("VALUE ", pair[0], " ", var2bytes(pair[1]).hex_encode())
		print("STR ", pair[0], " ", str(pair[1]))
	var path = OS.get_environment("VARIANT_DECODE_FILE")
	if path != "":
		var f = File.new()
		if f.open(path, File.READ) != OK:
			print("ERROR cannot open ", path)
		else:
			while not f.eof_reached():
				var line = f.get_line().strip_edges()
				if line == "":
					continue
				var parts = line.split(" ")
				var v = bytes2var(hex_to_bytes(parts[1]))
				var text = str(v)
				if v is EncodedObjectAsID:
					text = "OBJECTID " + str(v.get_object_id())
				print("DECODED ", parts[0], " ", typeof(v), " ", text)
				print("REENCODED ", parts[0], " ", var2bytes(v).hex_encode())
			f.close()
	node.free()
	print("DONE")
	quit()
