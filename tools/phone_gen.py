"""What the generators of C tables from python3-phonenumbers share
(tools/gen_phone_data.py, tools/gen_phone_tz.py)."""
import os


def c_string(s):
    """s as a C string literal."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_lines(path, lines):
    """Writes the lines to path through a temporary file, so a build that is
    interrupted never leaves half a table."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines))
    os.replace(tmp, path)
