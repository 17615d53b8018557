/*
 * m2bridge.wsgi._speedups: the fast path's hot loops, compiled (optional).
 *
 * Each function has a pure-Python twin that stays the fallback when this module is not built
 * (setup.py builds it when a C compiler is there; workers log which one they use), and the
 * equivalence tests run through both:
 *
 *   parse_request(frame, template, keys) -> (sender, conn_id, path, environ, body) | None
 *       twin: fast_environ.parse_request. Splits a request message; tnetstring headers are
 *       stored in a copy of the environ template under keys[name] (a dict whose __missing__
 *       computes a new name's environ key; "" drops the header), values decoded as latin-1;
 *       JSON headers come back as their payload (bytes) in the environ's place, for ujson.
 *       None declines the message (anything but string names and values, any malformed or
 *       unusual framing: the reference path then judges it).
 *   store_json(environ, headers, keys) -> bool
 *       twin: fast_environ.store_json. Stores ujson's dict of JSON headers; False declines
 *       (a value that is not exactly a str).
 *   render_reply(sender, conn_id, line, date, end, body) -> bytes
 *       twin: fast_response.render_reply. The Mongrel2 reply message carrying a whole
 *       response: "SENDER LEN:ID, " + line + date + "Content-Length: N\r\n" + end + body.
 *
 * Bad input never raises: it declines. A wrong argument type (a bug of the caller) raises
 * TypeError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* A tnetstring length: 1 to 9 digits, no leading zero (stricter than the codec: whatever
 * it accepts that this refuses goes to the reference path, which is always right). */
#define MAX_DIGITS 9

/* Read one "LEN:DATA," string element at *pos (before limit); its data span on success. */
static int
read_string(const char *buf, Py_ssize_t *pos, Py_ssize_t limit,
            Py_ssize_t *data, Py_ssize_t *size)
{
    Py_ssize_t i = *pos, n = 0;
    int digits = 0;
    while (i < limit && buf[i] >= '0' && buf[i] <= '9') {
        if (++digits > MAX_DIGITS || (digits == 2 && buf[i - 1] == '0'))
            return 0;
        n = n * 10 + (buf[i] - '0');
        i++;
    }
    if (digits == 0 || i >= limit || buf[i] != ':')
        return 0;
    i++;
    if (n > limit - i - 1 || buf[i + n] != ',')
        return 0;
    *data = i;
    *size = n;
    *pos = i + n + 1;
    return 1;
}

/* The environ key of a header name: a new reference, or NULL with an exception set. */
static PyObject *
environ_key(PyObject *keys, PyObject *name)
{
    PyObject *key = PyDict_GetItemWithError(keys, name);
    if (key != NULL) {
        Py_INCREF(key);
        return key;
    }
    if (PyErr_Occurred())
        return NULL;
    return PyObject_GetItem(keys, name); /* __missing__ learns it */
}

/* environ[keys[name]] = value unless the key is ""; 0 on success, -1 with an exception. */
static int
store(PyObject *environ, PyObject *keys, PyObject *name, PyObject *value)
{
    PyObject *key = environ_key(keys, name);
    int status = 0;
    if (key == NULL)
        return -1;
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "environ keys must be str");
        status = -1;
    }
    else if (PyUnicode_GET_LENGTH(key) > 0) {
        status = PyDict_SetItem(environ, key, value);
    }
    Py_DECREF(key);
    return status;
}

/* Store the string pairs of a tnetstring dict payload buf[start..end) in environ: 1 stored,
 * 0 declined (anything but string names and values, or a malformed element), -1 error. */
static int
store_pairs(PyObject *environ, PyObject *keys, const char *buf, Py_ssize_t start,
            Py_ssize_t end)
{
    Py_ssize_t pos = start;
    while (pos < end) {
        Py_ssize_t name_at, name_size, value_at, value_size;
        PyObject *name, *value;
        int status;
        if (!read_string(buf, &pos, end, &name_at, &name_size)
            || !read_string(buf, &pos, end, &value_at, &value_size))
            return 0;
        name = PyUnicode_DecodeLatin1(buf + name_at, name_size, NULL);
        if (name == NULL)
            return -1;
        value = PyUnicode_DecodeLatin1(buf + value_at, value_size, NULL);
        if (value == NULL) {
            Py_DECREF(name);
            return -1;
        }
        status = store(environ, keys, name, value);
        Py_DECREF(name);
        Py_DECREF(value);
        if (status < 0)
            return -1;
    }
    return 1;
}

static PyObject *
store_json(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *environ, *headers, *keys, *name, *value;
    Py_ssize_t pos = 0;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "store_json(environ, headers, keys)");
        return NULL;
    }
    environ = args[0];
    headers = args[1];
    keys = args[2];
    if (!PyDict_Check(environ) || !PyDict_Check(keys)) {
        PyErr_SetString(PyExc_TypeError, "store_json(dict, object, dict)");
        return NULL;
    }
    if (!PyDict_CheckExact(headers))
        Py_RETURN_FALSE;
    /* Every value first: a declined message must leave nothing behind worth keeping. */
    while (PyDict_Next(headers, &pos, &name, &value)) {
        if (!PyUnicode_CheckExact(value) || !PyUnicode_CheckExact(name))
            Py_RETURN_FALSE;
    }
    pos = 0;
    while (PyDict_Next(headers, &pos, &name, &value)) {
        if (store(environ, keys, name, value) < 0)
            return NULL;
    }
    Py_RETURN_TRUE;
}

/* A netstring length at buf[i..limit): 1 to 12 digits then ':'; -1 if none. */
static Py_ssize_t
read_netstring_length(const char *buf, Py_ssize_t *pos, Py_ssize_t limit)
{
    Py_ssize_t i = *pos, n = 0;
    int digits = 0;
    while (i < limit && buf[i] >= '0' && buf[i] <= '9') {
        if (++digits > 12)
            return -1;
        n = n * 10 + (buf[i] - '0');
        i++;
    }
    if (digits == 0 || i >= limit || buf[i] != ':')
        return -1;
    *pos = i + 1;
    return n;
}

static Py_ssize_t
find_space(const char *buf, Py_ssize_t from, Py_ssize_t size)
{
    const char *at = memchr(buf + from, ' ', (size_t)(size - from));
    return at == NULL ? -1 : at - buf;
}

/* parse_request(frame, template, keys) -> (sender, conn_id, path, environ, body), or None to
 * decline. environ is a copy of template with the tnetstring headers stored; for JSON headers
 * it is their payload (bytes), which the caller parses with ujson. */
static PyObject *
parse_request(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *frame, *template, *keys, *environ, *result = NULL;
    PyObject *sender = NULL, *conn_id = NULL, *path = NULL, *body = NULL;
    const char *buf;
    Py_ssize_t size, s1, s2, s3, i, start, length, end, body_length;
    char digits[24];
    if (nargs != 3 || !PyBytes_Check(args[0]) || !PyDict_Check(args[1])
        || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "parse_request(bytes, dict, dict)");
        return NULL;
    }
    frame = args[0];
    template = args[1];
    keys = args[2];
    buf = PyBytes_AS_STRING(frame);
    size = PyBytes_GET_SIZE(frame);
    s1 = find_space(buf, 0, size);
    if (s1 < 0)
        Py_RETURN_NONE;
    s2 = find_space(buf, s1 + 1, size);
    if (s2 < 0 || s2 - s1 - 1 < 1 || s2 - s1 - 1 > 20)
        Py_RETURN_NONE;
    for (i = s1 + 1; i < s2; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            Py_RETURN_NONE;
    }
    s3 = find_space(buf, s2 + 1, size);
    if (s3 < 0)
        Py_RETURN_NONE;
    /* the headers netstring */
    i = s3 + 1;
    length = read_netstring_length(buf, &i, size);
    if (length < 0 || length >= size - i)
        Py_RETURN_NONE;
    start = i;
    end = i + length;
    /* the body netstring, which must end the frame */
    i = end + 1;
    body_length = read_netstring_length(buf, &i, size);
    if (body_length < 0 || body_length != size - i - 1 || buf[size - 1] != ',')
        Py_RETURN_NONE;
    if (buf[end] == ',') {
        /* JSON headers: their payload, for the caller's JSON parse, in the environ's place */
        environ = PyBytes_FromStringAndSize(buf + start, end - start);
        if (environ == NULL)
            return NULL;
    }
    else if (buf[end] != '}') {
        Py_RETURN_NONE;
    }
    else {
        /* A tnetstring length has no leading zero and at most 9 digits (the codec's rule). */
        if ((buf[s3 + 1] == '0' && start - s3 - 1 > 2) || start - s3 - 2 > MAX_DIGITS)
            Py_RETURN_NONE;
        environ = PyDict_Copy(template);
        if (environ == NULL)
            return NULL;
        switch (store_pairs(environ, keys, buf, start, end)) {
        case 0:
            Py_DECREF(environ);
            Py_RETURN_NONE;
        case -1:
            goto error;
        }
    }
    memcpy(digits, buf + s1 + 1, (size_t)(s2 - s1 - 1));
    digits[s2 - s1 - 1] = '\0';
    sender = PyBytes_FromStringAndSize(buf, s1);
    conn_id = PyLong_FromString(digits, NULL, 10);
    path = PyUnicode_DecodeLatin1(buf + s2 + 1, s3 - s2 - 1, NULL);
    body = PyBytes_FromStringAndSize(buf + size - 1 - body_length, body_length);
    if (sender == NULL || conn_id == NULL || path == NULL || body == NULL)
        goto error;
    result = PyTuple_Pack(5, sender, conn_id, path, environ, body);
error:
    Py_XDECREF(sender);
    Py_XDECREF(conn_id);
    Py_XDECREF(path);
    Py_XDECREF(body);
    Py_DECREF(environ);
    return result;
}

/* render_reply(sender, conn_id, line, date, end, body) -> bytes: the Mongrel2 reply
 * "SENDER LEN:ID, " + line + date + "Content-Length: N\r\n" + end + body, where line is the
 * status line and the application's header lines (see fast_response.render_reply). */
static PyObject *
render_reply(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    char id_text[32], length_text[48];
    int id_size, length_size, prefix_size;
    char prefix[48];
    unsigned long long conn_id;
    Py_ssize_t total, sizes[4];
    PyObject *out;
    char *at;
    int i;
    if (nargs != 6 || !PyBytes_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "render_reply(bytes, int, bytes, bytes, bytes, bytes)");
        return NULL;
    }
    for (i = 2; i < 6; i++) {
        if (!PyBytes_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "render_reply(bytes, int, bytes, bytes, bytes, bytes)");
            return NULL;
        }
        sizes[i - 2] = PyBytes_GET_SIZE(args[i]);
    }
    conn_id = PyLong_AsUnsignedLongLong(args[1]);
    if (conn_id == (unsigned long long)-1 && PyErr_Occurred())
        return NULL; /* negative or past 64 bits: the caller renders it */
    id_size = snprintf(id_text, sizeof id_text, "%llu", conn_id);
    prefix_size = snprintf(prefix, sizeof prefix, " %d:%s, ", id_size, id_text);
    length_size = snprintf(length_text, sizeof length_text, "Content-Length: %zd\r\n",
                           sizes[3]);
    total = PyBytes_GET_SIZE(args[0]) + prefix_size + sizes[0] + sizes[1] + length_size
            + sizes[2] + sizes[3];
    out = PyBytes_FromStringAndSize(NULL, total);
    if (out == NULL)
        return NULL;
    at = PyBytes_AS_STRING(out);
    memcpy(at, PyBytes_AS_STRING(args[0]), (size_t)PyBytes_GET_SIZE(args[0]));
    at += PyBytes_GET_SIZE(args[0]);
    memcpy(at, prefix, (size_t)prefix_size);
    at += prefix_size;
    memcpy(at, PyBytes_AS_STRING(args[2]), (size_t)sizes[0]);
    at += sizes[0];
    memcpy(at, PyBytes_AS_STRING(args[3]), (size_t)sizes[1]);
    at += sizes[1];
    memcpy(at, length_text, (size_t)length_size);
    at += length_size;
    memcpy(at, PyBytes_AS_STRING(args[4]), (size_t)sizes[2]);
    at += sizes[2];
    memcpy(at, PyBytes_AS_STRING(args[5]), (size_t)sizes[3]);
    return out;
}

static PyMethodDef methods[] = {
    {"render_reply", (PyCFunction)(void (*)(void))render_reply, METH_FASTCALL,
     "The Mongrel2 reply carrying a whole response whose head is known."},
    {"parse_request", (PyCFunction)(void (*)(void))parse_request,
     METH_FASTCALL,
     "Split a request message: (sender, conn_id, path, environ with the tnetstring headers "
     "stored, or the JSON headers' payload, body), or None to decline."},
    {"store_json", (PyCFunction)(void (*)(void))store_json, METH_FASTCALL,
     "Store JSON headers (a dict of str) in an environ; False to decline."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "m2bridge.wsgi._speedups",
    "The fast path's hot loops, compiled (see m2bridge/wsgi/fast_environ.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModule_Create(&module);
}
