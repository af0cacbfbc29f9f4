" .mig files are migc models
autocmd BufRead,BufNewFile *.mig setfiletype mig
