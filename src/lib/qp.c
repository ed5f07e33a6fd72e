/*
 * qp — see qp.h. One pass, output never longer than input: each "=XY"
 * becomes one byte, a soft line break becomes nothing, everything else is
 * copied.
 */
#include "lib/qp.h"

#include "lib/str.h"

char *
qp_decode(const char *in, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t n = 0, i, j;
	int h, l;

	for (i = 0; i < len; i++) {
		if (in[i] != '=') {
			out[n++] = in[i];
			continue;
		}
		if (i + 2 < len && (h = str_hex_value(in[i + 1])) >= 0 &&
		    (l = str_hex_value(in[i + 2])) >= 0) {
			out[n++] = (char)(h * 16 + l);
			i += 2;
			continue;
		}
		/* soft line break: "=" then blanks then the line end */
		j = i + 1;
		while (j < len && (in[j] == ' ' || in[j] == '\t'))
			j++;
		if (j < len && in[j] == '\r')
			j++;
		if (j == len || in[j] == '\n') {
			i = j;
			continue;
		}
		out[n++] = '='; /* malformed: kept */
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}
