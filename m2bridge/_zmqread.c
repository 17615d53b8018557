/*
 * m2bridge._zmqread: read one frame from a ZeroMQ socket without blocking, and say
 * "nothing there" with None instead of raising (optional; see m2bridge/zmqread.py).
 *
 * pyzmq reports an empty socket by raising zmq.Again, which costs about 25,000 instructions
 * (more than parsing a request); a worker meets one on every wake-up. This calls the libzmq
 * that pyzmq itself loaded (bind() finds its functions in the library already in memory:
 * RTLD_NOLOAD, so the socket and the functions are of one copy of libzmq) on the socket
 * pyzmq created (its `underlying` address).
 *
 *   bind(path) -> None          resolve the functions in the loaded libzmq at `path`;
 *                               OSError if it is not loaded or lacks them
 *   read(address) -> bytes | None | int
 *                               one frame; None when the socket has none now (EAGAIN);
 *                               an errno (int) on any other error: the caller then reads
 *                               through pyzmq, which raises the matching zmq.ZMQError
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>

/* libzmq 4.x ABI: an opaque 64-byte message, pointer-aligned (zmq.h). */
typedef struct {
    unsigned char _[64] __attribute__((aligned(sizeof(void *))));
} zmq_msg_t;
#define ZMQ_DONTWAIT 1

static int (*msg_init)(zmq_msg_t *);
static int (*msg_recv)(zmq_msg_t *, void *, int);
static void *(*msg_data)(zmq_msg_t *);
static size_t (*msg_size)(const zmq_msg_t *);
static int (*msg_close)(zmq_msg_t *);
static int (*last_errno)(void);

static PyObject *
bind(PyObject *module, PyObject *arg)
{
    PyObject *path_bytes;
    void *library;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "bind(path: str)");
        return NULL;
    }
    if (!PyUnicode_FSConverter(arg, &path_bytes))
        return NULL;
    library = dlopen(PyBytes_AS_STRING(path_bytes), RTLD_NOW | RTLD_NOLOAD);
    Py_DECREF(path_bytes);
    if (library == NULL) {
        PyErr_Format(PyExc_OSError, "libzmq is not loaded from %R", arg);
        return NULL;
    }
    msg_init = (int (*)(zmq_msg_t *))dlsym(library, "zmq_msg_init");
    msg_recv = (int (*)(zmq_msg_t *, void *, int))dlsym(library, "zmq_msg_recv");
    msg_data = (void *(*)(zmq_msg_t *))dlsym(library, "zmq_msg_data");
    msg_size = (size_t(*)(const zmq_msg_t *))dlsym(library, "zmq_msg_size");
    msg_close = (int (*)(zmq_msg_t *))dlsym(library, "zmq_msg_close");
    last_errno = (int (*)(void))dlsym(library, "zmq_errno");
    if (!msg_init || !msg_recv || !msg_data || !msg_size || !msg_close || !last_errno) {
        msg_recv = NULL;
        PyErr_Format(PyExc_OSError, "%R lacks the zmq_msg_* functions", arg);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
read_frame(PyObject *module, PyObject *arg)
{
    void *socket;
    zmq_msg_t message;
    PyObject *frame;
    int error;
    if (msg_recv == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "read() before bind()");
        return NULL;
    }
    socket = PyLong_AsVoidPtr(arg);
    if (socket == NULL) {
        if (PyErr_Occurred())
            return NULL;
        return PyLong_FromLong(ENOTSOCK); /* closed: pyzmq raises the matching error */
    }
    msg_init(&message);
    if (msg_recv(&message, socket, ZMQ_DONTWAIT) < 0) {
        error = last_errno();
        msg_close(&message);
        if (error == EAGAIN)
            Py_RETURN_NONE;
        return PyLong_FromLong(error);
    }
    frame = PyBytes_FromStringAndSize((const char *)msg_data(&message),
                                      (Py_ssize_t)msg_size(&message));
    msg_close(&message);
    return frame;
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_O, "Resolve the zmq_msg_* functions in the loaded libzmq at path."},
    {"read", read_frame, METH_O,
     "One frame from the socket at this address without blocking; None when it has none, "
     "an errno on another error."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "m2bridge._zmqread",
    "Read a ZeroMQ frame without raising when there is none (see m2bridge/zmqread.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__zmqread(void)
{
    return PyModule_Create(&module);
}
