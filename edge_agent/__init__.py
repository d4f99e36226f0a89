"""The home gateway: BLE links, GATT decoders, device handlers, durable outbox, MQTT publisher, local plan advice."""
