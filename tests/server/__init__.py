"""Throwaway servers (`pgdecor._server`): their signals."""
