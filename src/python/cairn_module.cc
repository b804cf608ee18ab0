// cairn._cairn: the Python binding of libcairn (include/cairn/client.h), used by the `cairn`
// package (python/cairn). Reads release the GIL; errors raise OSError(errno, message).
//
// A sample comes back as a read-only memoryview of the buffer libcairn read it into (no copy):
// the reader threads touch its pages while reading, in parallel, instead of the consuming thread
// copying every sample into fresh memory (on a 2-core VM that copy's page faults alone cost
// ~0.7 ms a 112 KiB sample). bytes(view) copies; torch.frombuffer, numpy.frombuffer and
// io.BytesIO take it as it is.
#include <cairn/client.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
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

// Bytes read, owned by the memoryviews made of it.
struct Blob {
  std::string data;
};

py::object View(std::string data) {
  py::object blob = py::cast(Blob{std::move(data)});
  return py::reinterpret_steal<py::object>(PyMemoryView_FromObject(blob.ptr()));
}

// A string of n bytes whose contents the caller writes (no zero fill).
std::string Uninitialized(size_t n) {
  std::string s;
  s.resize_and_overwrite(n, [](char*, size_t len) { return len; });
  return s;
}

// A Dataset keeps its Client alive (the Python objects may go in any order).
struct PyDataset {
  std::shared_ptr<cairn::Client> client;
  std::shared_ptr<cairn::Dataset> ds;
};

struct PyEpoch {
  std::shared_ptr<cairn::Dataset> ds;  // outlives the epoch
  std::unique_ptr<cairn::Epoch> epoch;
};

py::object ReadWhole(const cairn::Dataset& ds, size_t i, uint64_t offset, int64_t length) {
  if (i >= ds.size()) Raise({EINVAL, "index out of range"});
  const uint64_t size = ds.file(i).size;
  const uint64_t n = length < 0 ? (offset < size ? size - offset : 0) : length;
  std::string buf;
  cairn::Expected<size_t> got;
  {
    py::gil_scoped_release release;
    buf.resize_and_overwrite(n, [&](char* p, size_t len) {
      got = ds.Read(i, offset, len, p);
      return got ? *got : 0;
    });
  }
  Take(std::move(got));
  return View(std::move(buf));
}

}  // namespace

PYBIND11_MODULE(_cairn, m) {
  m.doc() = "libcairn: the native read path of a Cairn mount";

  py::class_<Blob>(m, "Blob", py::buffer_protocol()).def_buffer([](Blob& b) {
    return py::buffer_info(b.data.data(), 1, py::format_descriptor<uint8_t>::format(), 1,
                           {static_cast<py::ssize_t>(b.data.size())}, {1}, /*readonly=*/true);
  });

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
            std::vector<std::string> bufs(indices.size());
            std::vector<cairn::ReadRequest> reqs(indices.size());
            for (size_t k = 0; k < indices.size(); ++k) {
              if (indices[k] >= d.ds->size()) Raise({EINVAL, "index out of range"});
              bufs[k] = Uninitialized(d.ds->file(indices[k]).size);
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
            for (auto& b : bufs) out.append(View(std::move(b)));
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
      .def_property_readonly("source", [](const PyDataset& d) { return d.ds->source(); })
      .def("serialize", [](const PyDataset& d) { return py::bytes(d.ds->Serialize()); })
      .def("stats", [](const PyDataset& d) {
        const cairn::DatasetStats s = d.ds->stats();
        py::dict out;
        out["direct_bytes"] = s.direct_bytes;
        out["inline_bytes"] = s.inline_bytes;
        out["mount_bytes"] = s.mount_bytes;
        out["hydrated_segments"] = s.hydrated_segments;
        out["hydrated_objects"] = s.hydrated_objects;
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
             return py::make_tuple(sample->file, View(std::move(sample->data)));
           })
      .def_property_readonly("position", [](const PyEpoch& e) { return e.epoch->position(); })
      .def_property_readonly("peak_bytes", [](const PyEpoch& e) { return e.epoch->peak_bytes(); })
      .def("close", [](PyEpoch& e) {
        py::gil_scoped_release release;
        e.epoch.reset();
      });

  m.def(
      "open_dataset",
      [](const std::string& mountpoint, const std::string& dir,
         const std::optional<py::bytes>& index) {
        std::optional<std::string> serialized;  // taken while holding the GIL
        if (index) serialized = std::string(*index);
        cairn::Expected<std::unique_ptr<cairn::Client>> c;
        {
          py::gil_scoped_release release;
          c = cairn::Client::Open(mountpoint);
        }
        std::shared_ptr<cairn::Client> client = Take(std::move(c));
        cairn::Expected<std::unique_ptr<cairn::Dataset>> ds;
        {
          py::gil_scoped_release release;
          ds = serialized ? client->OpenDataset(dir, *serialized) : client->OpenDataset(dir);
        }
        return PyDataset{client, Take(std::move(ds))};
      },
      py::arg("mountpoint"), py::arg("dir") = "", py::arg("index") = py::none(),
      "Opens the tree dir (relative to the mount) of the Cairn mount at mountpoint; from index "
      "(Dataset.serialize() of the same tree) without asking the daemon.");
}
