"""Testbeds: the data and shipped networks experiments run on (``testbed.Testbed``), one module each."""
