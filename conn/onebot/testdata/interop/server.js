// OneBot application side, Node ws: the same protocol as server.py.
// usage: node server.js [PORT] [--drop-first]
const { WebSocketServer } = require('ws');
const dropFirst = process.argv.includes('--drop-first');
const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const wss = new WebSocketServer({ host: '127.0.0.1', port: args.length ? Number(args[0]) : 0 });
let conns = 0;
wss.on('listening', () => console.log('LISTEN ' + wss.address().port));
wss.on('connection', (ws, req) => {
  const n = ++conns;
  console.log('CONN ' + JSON.stringify(req.headers));
  let first = true;
  ws.on('message', (data) => {
    console.log(JSON.stringify(JSON.parse(data.toString())));
    if (first) {
      first = false;
      if (dropFirst && n === 1) { ws.terminate(); return; }
      ws.send(JSON.stringify({ action: 'get_login_info', echo: 'js-' + n }));
    }
  });
});
