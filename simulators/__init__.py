"""Simulated plants: real Modbus TCP and OPC UA PLC servers with a ground truth (docs/simulators.md)."""
