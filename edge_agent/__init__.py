"""The home gateway's runtime: BLE links, device handlers, GATT decoders, durable outbox and MQTT publisher.

Kept empty on purpose, so importing `edge_agent.gatt` pulls in nothing else. Import the parts from their modules:
`edge_agent.outbox.Outbox`, `edge_agent.publisher.Publisher`, `edge_agent.agent.Agent`,
`edge_agent.config.load_config`, `edge_agent.link.Link` / `Radio` and the `LinkError` classes.
"""
