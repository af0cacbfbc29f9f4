" Vim syntax file for migc model files (.mig): docs/language.md. Install: copy
" syntax/ and ftdetect/ into ~/.vim/ (or a pack). tests/cli/editors.sh keeps its word
" lists equal to the lexer's keywords and the built-in functions.
if exists("b:current_syntax")
  finish
endif

syn keyword migDeclaration model input latent code const net train generate
syn keyword migDeclaration encode
syn keyword migStatement return step minimize maximize with report
syn keyword migBuiltin adam avgpool batchnorm bce bernoulli categorical concat constant
syn keyword migBuiltin conv cos cosine deconv dense dropout embedding exp
syn keyword migBuiltin flatten gaussian_nll grad groupnorm info_bernoulli info_categorical info_gaussian instancenorm
syn keyword migBuiltin layernorm linear log lrelu matmul maximum maxpool mean
syn keyword migBuiltin normal onehot ones relu repeat reshape sgd sigmoid
syn keyword migBuiltin sin slice softmax_ce softplus sqrt sum tanh uniform
syn keyword migBuiltin upsample zeros
syn match migComment "#.*$" contains=@Spell
syn region migString start=+"+ end=+"+ oneline
syn match migNumber "\<\d\+\.\=\d*\([eE][-+]\=\d\+\)\=\>"
syn match migNumber "\.\d\+\([eE][-+]\=\d\+\)\=\>"
syn match migNetName "\(\<net\s\+\)\@<=\h\w*"
syn match migKeywordArg "\h\w*\ze\s*=\s*[^=]" contained
syn region migCall matchgroup=NONE start="(" end=")" transparent contains=ALLBUT,migNetName

hi def link migDeclaration Keyword
hi def link migStatement Statement
hi def link migBuiltin Function
hi def link migComment Comment
hi def link migString String
hi def link migNumber Number
hi def link migNetName Identifier
hi def link migKeywordArg Special

let b:current_syntax = "mig"
