// OneBot application side, Node ws: the same protocol as client.py.
// usage: node client.js URL [TOKEN|-] [REQUEST_JSON ...]
const WebSocket = require('ws');
const [url, token, ...requests] = process.argv.slice(2);
const headers = token && token !== '-' ? { Authorization: 'Bearer ' + token } : {};
const ws = new WebSocket(url, { headers });
ws.on('unexpected-response', (req, res) => {
  console.log('STATUS ' + res.statusCode);
  process.exit(0);
});
ws.on('open', () => console.log('OPEN'));
let sent = false;
ws.on('message', (data) => {
  console.log(JSON.stringify(JSON.parse(data.toString())));
  if (!sent) {
    sent = true;
    for (const r of requests) ws.send(r);
  }
});
ws.on('error', (err) => { console.error(String(err)); process.exit(1); });
ws.on('close', () => process.exit(0));
