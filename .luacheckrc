std = "max"
max_line_length = 130
exclude_files = { "build/", "luarocks-tree/", ".tmp/" }
read_globals = { "ngx", "vim", "jit" }
files["spec/"] = { std = "+busted" }
