# Test peer for hpack_test.ts: Debian's python3-hpack, an HPACK implementation
# nobody here wrote. Reads one JSON job on stdin, writes one JSON answer.
#   {"op": "decode", "blocks": [hex, ...]}               -> {"lists": [[[name, value], ...], ...]}
#   {"op": "encode", "sets": [{"size": n|null, "huffman": b, "fields": [[n, v, never], ...]}, ...]}
#                                                         -> {"blocks": [hex, ...]}
#   {"op": "huffman", "strings": [hex, ...]}              -> {"encoded": [hex, ...]}
# Strings travel as latin1 (byte n <-> U+00nn).
import json, sys
from hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

job = json.load(sys.stdin)
op = job["op"]
if op == "decode":
    d = Decoder()
    d.max_header_list_size = 1 << 30
    lists = []
    for h in job["blocks"]:
        lists.append([[n.decode("latin1"), v.decode("latin1")] for n, v in d.decode(bytes.fromhex(h), raw=True)])
    print(json.dumps({"lists": lists, "tableSize": d.header_table._current_size}))
elif op == "encode":
    e = Encoder()
    blocks = []
    for s in job["sets"]:
        if s.get("size") is not None:
            e.header_table_size = s["size"]
        fields = []
        for n, v, never in s["fields"]:
            cls = NeverIndexedHeaderTuple if never else HeaderTuple
            fields.append(cls(n.encode("latin1"), v.encode("latin1")))
        blocks.append(e.encode(fields, huffman=s["huffman"]).hex())
    print(json.dumps({"blocks": blocks}))
elif op == "huffman":
    h = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
    print(json.dumps({"encoded": [h.encode(bytes.fromhex(x)).hex() for x in job["strings"]]}))
