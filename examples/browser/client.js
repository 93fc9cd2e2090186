// A browser client of a Godot 3 multiplayer room over WebSocket, in plain JavaScript.
//
// Wire format (WEBSOCKET.md): every binary message is a 9-byte header -- u8 type, i32 from,
// i32 to, little-endian -- then the payload. Types: 0 data, 1 SYS_ADD, 2 SYS_DEL, 3 SYS_ID;
// system messages carry a 4-byte little-endian peer id. A data payload is a MultiplayerAPI
// packet (MULTIPLAYER_API.md) whose first byte is the command; RAW (4) is what `send_bytes`
// sends: the byte 4, then the bytes as they are. This page sends chat lines as RAW packets of
// UTF-8 text and shows the RAW packets it receives; of anything else it decodes the header.
//
// Query string: ?ws=ws://HOST:PORT (the server's WebSocket address) &name=NAME (a label).
//
// For scripts (the browser test drives the page over the DevTools protocol):
//   window.room            {id, name, url, status, peers, received, sent, other, error}
//   window.sendRaw(to, t)  sends text t as a RAW packet to peer `to` (0 = everyone); true if sent
//   window.setPeerLabel(id, label)  a local nickname shown next to the id in the peer list (the
//                          framing carries no names; a script that knows who is who can say so)

"use strict";

(function () {
  const TYPE_DATA = 0;
  const SYS_ADD = 1;
  const SYS_DEL = 2;
  const SYS_ID = 3;
  const HEADER = 9;
  const CMD_RAW = 4;
  const COMMANDS = ["REMOTE_CALL", "REMOTE_SET", "SIMPLIFY_PATH", "CONFIRM_PATH", "RAW"];
  const TYPES = ["data", "SYS_ADD", "SYS_DEL", "SYS_ID"];
  // A Godot 3 WebSocket peer's default buffer: 65,536 bytes, of which 9 are the header.
  const MAX_PAYLOAD = 65536 - HEADER;

  const params = new URLSearchParams(location.search);
  const url = params.get("ws") || "ws://127.0.0.1:9081";
  const name = params.get("name") || "browser";
  const started = performance.now();

  const room = {
    id: 0, // 0 until SYS_ID arrives, like Godot's client
    name: name,
    url: url,
    // connecting -> handshaking (socket open, no SYS_ADD(1) yet) -> connected -> disconnected
    status: "connecting",
    peers: [], // ids we were told about (SYS_ADD), the server (1) included, sorted
    received: [], // RAW packets: {from, to, text, hex, at}
    sent: [], // {to, text, at}
    other: [], // frames that are not RAW: {type, typeName, from, to, command, detail, length, hex, at}
    error: null,
    labels: {}, // id -> local nickname (setPeerLabel)
  };
  window.room = room;

  const log = []; // what the message list shows, oldest first
  const utf8 = new TextEncoder();
  const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

  const now = () => Math.round(performance.now() - started);
  const hex = (bytes, max) => {
    const n = Math.min(bytes.length, max === undefined ? bytes.length : max);
    let s = "";
    for (let i = 0; i < n; i++) s += (i ? " " : "") + bytes[i].toString(16).padStart(2, "0");
    return n < bytes.length ? s + " ..." : s;
  };

  // --- the socket -------------------------------------------------------------------------

  let ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    room.status = "error";
    room.error = String(e);
  }
  if (ws) {
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      room.status = "handshaking";
      system("socket open, waiting for the server's SYS_ID");
    };
    ws.onmessage = (ev) => receive(ev.data);
    ws.onerror = () => {
      room.error = "WebSocket error";
    };
    ws.onclose = (ev) => {
      const was = room.status;
      room.status = "disconnected";
      room.peers = [];
      system(
        was === "connecting"
          ? "could not connect to " + url
          : "disconnected (code " + ev.code + (ev.reason ? ", " + ev.reason : "") + ")"
      );
    };
  }

  function receive(data) {
    if (!(data instanceof ArrayBuffer)) {
      record_other({ type: -1, typeName: "text frame", from: 0, to: 0, command: "-", detail: String(data).slice(0, 80), length: String(data).length, hex: "" });
      return;
    }
    const bytes = new Uint8Array(data);
    if (bytes.length < HEADER) {
      record_other({ type: -1, typeName: "short frame", from: 0, to: 0, command: "-", detail: "", length: bytes.length, hex: hex(bytes) });
      return;
    }
    const view = new DataView(data);
    const type = view.getUint8(0);
    const from = view.getInt32(1, true);
    const to = view.getInt32(5, true);
    const payload = bytes.subarray(HEADER);

    if (type === SYS_ID || type === SYS_ADD || type === SYS_DEL) {
      if (payload.length < 4) {
        record_other({ type, typeName: TYPES[type], from, to, command: "-", detail: "system message without an id", length: payload.length, hex: hex(payload) });
        return;
      }
      const id = view.getInt32(HEADER, true);
      if (type === SYS_ID) {
        room.id = id;
        system("the server gave us id " + id);
      } else if (type === SYS_ADD) {
        if (!room.peers.includes(id)) {
          room.peers.push(id);
          room.peers.sort((a, b) => a - b);
        }
        if (id === 1) {
          room.status = "connected";
          system("joined the room (server is peer 1)");
        } else {
          system("peer " + id + " joined");
        }
      } else {
        room.peers = room.peers.filter((p) => p !== id);
        system("peer " + id + " left");
      }
      render();
      return;
    }

    if (type === TYPE_DATA && payload.length >= 2 && payload[0] === CMD_RAW) {
      const body = payload.subarray(1);
      let text;
      try {
        text = strictUtf8.decode(body);
      } catch (e) {
        text = null;
      }
      const entry = { from, to, text: text === null ? "" : text, hex: hex(body), at: now() };
      room.received.push(entry);
      log.push({ kind: "raw", entry });
      render();
      return;
    }

    // Anything else: decode the header (and the command's name and path or method, if any).
    const entry = { type, typeName: TYPES[type] || "unknown type", from, to, command: "-", detail: "", length: payload.length, hex: hex(payload, 24) };
    if (type === TYPE_DATA) {
      if (payload.length === 0) {
        entry.command = "(empty)";
      } else {
        const c = payload[0];
        entry.command = COMMANDS[c] || "unknown command " + c;
        if (c === CMD_RAW) entry.detail = "RAW shorter than 2 bytes (Godot drops it)";
        else entry.detail = describe(c, payload);
      }
    }
    record_other(entry);
  }

  // The name inside an RPC, RSET, SIMPLIFY_PATH or CONFIRM_PATH packet, as far as it can be read.
  function describe(command, payload) {
    const cstring = (at) => {
      const end = payload.indexOf(0, at);
      if (at >= payload.length || end < 0) return null;
      try {
        return strictUtf8.decode(payload.subarray(at, end));
      } catch (e) {
        return null;
      }
    };
    if (command === 0 || command === 1) {
      if (payload.length < 6) return "shorter than 6 bytes (Godot drops it)";
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      const target = view.getUint32(1, true);
      const member = cstring(5);
      const where = target & 0x80000000 ? "path " + JSON.stringify(cstring(target & 0x7fffffff)) : "path id " + target;
      return (command === 0 ? "method " : "property ") + JSON.stringify(member) + ", " + where;
    }
    if (command === 2) {
      if (payload.length < 6) return "";
      const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
      return "path id " + view.getUint32(1, true) + " = " + JSON.stringify(cstring(5));
    }
    if (command === 3) return "path " + JSON.stringify(cstring(1));
    return "";
  }

  function record_other(entry) {
    entry.at = now();
    room.other.push(entry);
    log.push({ kind: "other", entry });
    render();
  }

  function system(text) {
    log.push({ kind: "system", entry: { text, at: now() } });
    render();
  }

  // --- sending ----------------------------------------------------------------------------

  // Sends `text` as a RAW packet (send_bytes) to peer `to`: 0 = everyone (the server relays),
  // 1 = the server, another id = that peer only. Throws when that cannot be done.
  function sendRaw(to, text) {
    to = Number(to);
    if (!Number.isInteger(to) || to < -2147483648 || to > 2147483647) throw new Error("bad target " + to);
    if (!ws || ws.readyState !== WebSocket.OPEN || room.id === 0) throw new Error("not connected (" + room.status + ")");
    const body = utf8.encode(String(text));
    if (body.length === 0) throw new Error("empty packet (Godot refuses empty send_bytes)");
    if (body.length + 1 > MAX_PAYLOAD) throw new Error("packet too large for a Godot WebSocket peer");
    const frame = new Uint8Array(HEADER + 1 + body.length);
    const view = new DataView(frame.buffer);
    view.setUint8(0, TYPE_DATA);
    view.setInt32(1, room.id, true);
    view.setInt32(5, to, true);
    frame[HEADER] = CMD_RAW;
    frame.set(body, HEADER + 1);
    ws.send(frame);
    const entry = { to, text: String(text), at: now() };
    room.sent.push(entry);
    log.push({ kind: "sent", entry });
    render();
    return true;
  }
  window.sendRaw = sendRaw;

  function setPeerLabel(id, label) {
    if (label) room.labels[Number(id)] = String(label);
    else delete room.labels[Number(id)];
    render();
    return true;
  }
  window.setPeerLabel = setPeerLabel;

  // --- the page ---------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const hue = (id) => (Math.imul(id, 2654435761) >>> 0) % 360;
  const avatar = (id) => {
    const a = el("span", "avatar", id === 1 ? "S" : String(id % 100).padStart(2, "0"));
    a.style.background = id === 1 ? "#478cbf" : "hsl(" + hue(id) + ", 65%, 66%)";
    return a;
  };
  const who = (id) => (id === 1 ? "server" : id === room.id ? "you" : "#" + id);
  const targetName = (to) => (to === 0 ? "everyone" : to < 0 ? "all but #" + -to : who(to));
  const stamp = (ms) => (ms / 1000).toFixed(2) + "s";

  let selected = 0;

  function render() {
    if (!document.body) return;
    document.title = name + " - Godot 3 room";
    $("title").textContent = "Godot 3 room \u00b7 " + name;
    $("url").textContent = url;
    $("me").replaceChildren(document.createTextNode("you are "), el("b", "", room.id ? "#" + room.id : "-"));
    const status = $("status");
    status.textContent = room.status;
    status.className = "badge " + room.status;

    const peers = $("peers");
    peers.replaceChildren();
    const everyone = el("li", selected === 0 ? "selected" : "");
    const all = el("span", "avatar", "*");
    all.style.background = "#8c93a6";
    everyone.append(all, el("span", "", "everyone"), el("span", "tag", "to = 0"));
    everyone.onclick = () => select(0);
    peers.append(everyone);
    const listed = room.id ? [room.id].concat(room.peers.filter((p) => p !== room.id)) : room.peers;
    for (const id of listed) {
      const li = el("li", selected === id ? "selected" : "");
      const label = room.labels[id];
      const names = el("span", "names");
      names.append(el("span", "pid", "#" + id));
      if (label) names.append(el("span", "label", label));
      li.append(avatar(id), names);
      if (id === 1) li.append(el("span", "tag", "server"));
      else if (id === room.id) li.append(el("span", "tag", "you"));
      if (id !== room.id) li.onclick = () => select(id);
      peers.append(li);
    }
    $("peer-count").textContent = String(room.peers.length + (room.id ? 1 : 0));

    const target = $("target");
    const options = [el("option", "", "To everyone")];
    options[0].value = "0";
    for (const id of room.peers) {
      const o = el("option", "", "To " + (id === 1 ? "the server (#1)" : "#" + id));
      o.value = String(id);
      options.push(o);
    }
    target.replaceChildren(...options);
    if (selected !== 0 && !room.peers.includes(selected)) selected = 0;
    target.value = String(selected);
    $("send").disabled = room.status !== "connected";

    const list = $("log");
    list.replaceChildren();
    for (const item of log.slice(-200)) {
      const e = item.entry;
      const li = el("li", item.kind);
      li.append(el("span", "time", stamp(e.at)));
      if (item.kind === "raw") {
        const w = el("span", "who", who(e.from) + (e.to === 0 ? "" : " \u2192 " + targetName(e.to)));
        if (e.from !== 1) w.style.color = "hsl(" + hue(e.from) + ", 65%, 70%)";
        else w.style.color = "#6fb0e0";
        li.append(w, el("span", "body", e.text || "(bytes) " + e.hex));
      } else if (item.kind === "sent") {
        li.append(el("span", "who", "you \u2192 " + targetName(e.to)), el("span", "body", e.text));
      } else if (item.kind === "other") {
        const body = el("span", "body");
        const head = el("span", "cmd", e.typeName === "data" ? e.command : e.typeName);
        body.append(head, document.createTextNode(" " + (e.detail ? e.detail + " \u00b7 " : "") + e.length + " bytes \u00b7 from " + e.from + " to " + e.to));
        if (e.hex) body.append(el("span", "hex", e.hex));
        li.append(el("span", "who", who(e.from)), body);
      } else {
        li.append(el("span", "who", "\u2022"), el("span", "body", e.text));
      }
      list.append(li);
    }
    if (log.length === 0) list.append(el("li", "empty", "No messages yet."));
    list.scrollTop = list.scrollHeight;
    $("msg-count").textContent = room.received.length + " received";
  }

  function select(id) {
    selected = id;
    render();
    $("text").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("target").onchange = (ev) => select(Number(ev.target.value));
    $("compose").onsubmit = (ev) => {
      ev.preventDefault();
      const input = $("text");
      if (!input.value) return;
      try {
        sendRaw(selected, input.value);
        input.value = "";
      } catch (e) {
        system("not sent: " + e.message);
      }
    };
    render();
  });
  render();
})();
