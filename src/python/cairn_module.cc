// cairn._cairn: the Python binding of libcairn (include/cairn/client.h), used by the `cairn`
// package (python/cairn). Reads release the GIL; errors raise OSError(errno, message).
#include <cairn/client.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <utility>

namespace py = pybind11;

namespace {

[[noreturn]] void Raise(const cairn::Error& e) {
  PyErr_SetObject(PyExc_OSError, py::make_tuple(e.code, e.message).ptr());
  throw py::error_already_set();
}

template <typename T>
T Take(cairn::Expected<T> r) {
  if (!r) Raise(r.error());
  return std::move(*r);
}

py::bytes Bytes(const std::vector<char>& v) { return py::bytes(v.data(), v.size()); }

// A Dataset keeps its Client alive (the Python objects may go in any order).
struct PyDataset {
  std::shared_ptr<cairn::Client> client;
  std::shared_ptr<cairn::Dataset> ds;
};

struct PyEpoch {
  std::shared_ptr<cairn::Dataset> ds;  // outlives the epoch
  std::unique_ptr<cairn::Epoch> epoch;
};

py::bytes ReadWhole(const cairn::Dataset& ds, size_t i, uint64_t offset, int64_t length) {
  if (i >= ds.size()) Raise({EINVAL, "index out of range"});
  const uint64_t size = ds.file(i).size;
  const uint64_t n = length < 0 ? (offset < size ? size - offset : 0) : length;
  std::vector<char> buf(n);
  cairn::Expected<size_t> got;
  {
    py::gil_scoped_release release;
    got = ds.Read(i, offset, n, buf.data());
  }
  buf.resize(Take(std::move(got)));
  return Bytes(buf);
}

}  // namespace

PYBIND11_MODULE(_cairn, m) {
  m.doc() = "libcairn: the native read path of a Cairn mount";

  py::class_<PyDataset>(m, "Dataset")
      .def("__len__", [](const PyDataset& d) { return d.ds->size(); })
      .def("path", [](const PyDataset& d, size_t i) { return d.ds->file(i).path; })
      .def("size", [](const PyDataset& d, size_t i) { return d.ds->file(i).size; })
      .def("paths",
           [](const PyDataset& d) {
             std::vector<std::string> out;
             out.reserve(d.ds->size());
             for (size_t i = 0; i < d.ds->size(); ++i) out.push_back(d.ds->file(i).path);
             return out;
           })
      .def("find", [](const PyDataset& d, const std::string& p) { return Take(d.ds->Find(p)); })
      .def(
          "read",
          [](const PyDataset& d, size_t i, uint64_t offset, int64_t length) {
            return ReadWhole(*d.ds, i, offset, length);
          },
          py::arg("index"), py::arg("offset") = 0, py::arg("length") = -1)
      .def(
          "read_many",
          [](const PyDataset& d, const std::vector<size_t>& indices, int parallel) {
            std::vector<std::vector<char>> bufs(indices.size());
            std::vector<cairn::ReadRequest> reqs(indices.size());
            for (size_t k = 0; k < indices.size(); ++k) {
              if (indices[k] >= d.ds->size()) Raise({EINVAL, "index out of range"});
              bufs[k].resize(d.ds->file(indices[k]).size);
              reqs[k] = {indices[k], 0, bufs[k].size(), bufs[k].data()};
            }
            cairn::Error failed;
            {
              py::gil_scoped_release release;
              d.ds->ReadBatch(
                  reqs,
                  [&](const cairn::ReadResult& r) {
                    if (!r.bytes) {
                      if (failed.code == 0) failed = r.bytes.error();
                    } else {
                      bufs[r.request].resize(*r.bytes);
                    }
                  },
                  parallel);
            }
            if (failed.code != 0) Raise(failed);
            py::list out;
            for (const auto& b : bufs) out.append(Bytes(b));
            return out;
          },
          py::arg("indices"), py::arg("parallel") = 16)
      .def(
          "begin_epoch",
          [](const PyDataset& d, std::vector<size_t> order, uint64_t budget_bytes, int threads) {
            cairn::PrefetchOptions o;
            o.budget_bytes = budget_bytes;
            o.threads = threads;
            return PyEpoch{d.ds, Take(d.ds->BeginEpoch(std::move(order), o))};
          },
          py::arg("order"), py::arg("budget_bytes") = 256ull << 20, py::arg("threads") = 8)
      .def("stats", [](const PyDataset& d) {
        const cairn::DatasetStats s = d.ds->stats();
        py::dict out;
        out["direct_bytes"] = s.direct_bytes;
        out["inline_bytes"] = s.inline_bytes;
        out["mount_bytes"] = s.mount_bytes;
        return out;
      });

  py::class_<PyEpoch>(m, "Epoch")
      .def("__iter__", [](PyEpoch& e) -> PyEpoch& { return e; })
      .def("__next__",
           [](PyEpoch& e) {
             if (!e.epoch) throw py::stop_iteration();
             cairn::Expected<std::optional<cairn::Sample>> s;
             {
               py::gil_scoped_release release;
               s = e.epoch->Next();
             }
             auto sample = Take(std::move(s));
             if (!sample) throw py::stop_iteration();
             return py::make_tuple(sample->file, Bytes(sample->data));
           })
      .def_property_readonly("position", [](const PyEpoch& e) { return e.epoch->position(); })
      .def_property_readonly("peak_bytes", [](const PyEpoch& e) { return e.epoch->peak_bytes(); })
      .def("close", [](PyEpoch& e) {
        py::gil_scoped_release release;
        e.epoch.reset();
      });

  m.def(
      "open_dataset",
      [](const std::string& mountpoint, const std::string& dir) {
        cairn::Expected<std::unique_ptr<cairn::Client>> c;
        {
          py::gil_scoped_release release;
          c = cairn::Client::Open(mountpoint);
        }
        std::shared_ptr<cairn::Client> client = Take(std::move(c));
        cairn::Expected<std::unique_ptr<cairn::Dataset>> ds;
        {
          py::gil_scoped_release release;
          ds = client->OpenDataset(dir);
        }
        return PyDataset{client, Take(std::move(ds))};
      },
      py::arg("mountpoint"), py::arg("dir") = "",
      "Opens the tree dir (relative to the mount) of the Cairn mount at mountpoint.");
}
