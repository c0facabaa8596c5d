"""The shared cache under `CARTON_HOME`: its layout, entries published once, holds, admin."""
