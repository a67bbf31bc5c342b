"""Edge collectors: one module per PLC protocol behind the Collector protocol."""
