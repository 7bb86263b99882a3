# Reference ids for texts that write control tokens (<bos>, <eos>, <pad>) as literal text,
# from Google's SentencePiece C++ (Debian python3-sentencepiece) on tokenizer.rebuilt.model.
# SentencePiece never parses control tokens from text; the .model path of GemmaTokenizer must do the same.
# Run: /usr/bin/python3 make_sp_control_literals.py > sp-control-literals.jsonl
import gzip, json, os, sentencepiece as spm
here = os.path.dirname(os.path.abspath(__file__))
sp = spm.SentencePieceProcessor(model_proto=gzip.open(os.path.join(here, "tokenizer.rebuilt.model.gz")).read())
texts = ["<bos>already has bos", "<pad><eos> padded text<pad>", "a<bos>b<eos>c", "<start_of_turn>user\n<bos>hi<end_of_turn>\n"]
for t in texts:
    print(json.dumps({"text": t, "ids": [2] + sp.encode(t)}, ensure_ascii=False))
