// Run an atomistic model saved with `AtomisticModel.save()` from C++, the way a
// simulation engine would, and print the energy and forces as JSON.
//
// The TorchScript classes of metatensor-torch (Labels, TensorBlock, System,
// ModelOutput, ...) are stored inside the model file: this program only needs
// libtorch. The classes are looked up by their qualified names in the
// compilation unit of the loaded model, and instances are created by calling
// their `__init__` methods (names and constructor signatures are part of the
// model-file ABI).
//
// usage: run_atomistic_model <model.pt> <check_consistency: 0|1>
//
// The system is a 2x2x2 supercell of fcc copper (32 atoms, a = 3.6 A),
// periodic, with deterministic displacements of the atoms. The engine works
// in angstrom and asks for the energy in eV. The neighbor lists requested by
// the model are computed by brute force over the periodic images, with the
// pair vectors computed by torch operations from a positions tensor that
// requires gradients; the forces are the negative gradient of the energy.
//
// Output (one JSON document on stdout):
//   {"positions": [[x, y, z], ...], "cell": [[...], ...], "types": [...],
//    "energy": E, "forces": [[fx, fy, fz], ...], "n_pairs": [...],
//    "error": "<message of the error for an unsupported atomic type>"}

#include <torch/script.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const char* LABELS = "__torch__.metatensor_torch._labels.Labels";
const char* TENSOR_BLOCK = "__torch__.metatensor_torch._block.TensorBlock";
const char* SYSTEM = "__torch__.metatensor_torch.atomistic._system.System";
const char* MODEL_OUTPUT = "__torch__.metatensor_torch.atomistic._outputs.ModelOutput";
const char* EVALUATION_OPTIONS =
    "__torch__.metatensor_torch.atomistic._outputs.ModelEvaluationOptions";

/// Create instances of the TorchScript classes stored in a model
class Classes {
public:
    explicit Classes(const torch::jit::Module& module):
        cu_(module._ivalue()->compilation_unit()) {}

    c10::ClassTypePtr get(const std::string& name) const {
        auto cls = cu_->get_class(c10::QualifiedName(name));
        if (!cls) {
            throw std::runtime_error("class " + name + " is not used by this model");
        }
        return cls;
    }

    /// create an instance of class `name`, calling `__init__` with `args`
    /// and `kwargs` (missing arguments take their default values)
    c10::IValue create(
        const std::string& name,
        std::vector<c10::IValue> args,
        const torch::jit::Kwargs& kwargs = {}
    ) const {
        auto cls = this->get(name);
        auto object = c10::ivalue::Object::create(
            c10::StrongTypePtr(cu_, cls), cls->numAttributes()
        );
        args.insert(args.begin(), object);
        cls->getMethod("__init__")(std::move(args), kwargs);
        return object;
    }

    c10::IValue labels(std::vector<std::string> names, torch::Tensor values) const {
        auto list = c10::List<std::string>();
        for (auto& name: names) {
            list.push_back(name);
        }
        return this->create(LABELS, {list, values.to(torch::kInt32), false});
    }

    c10::IValue block(
        torch::Tensor values,
        c10::IValue samples,
        const std::vector<c10::IValue>& components,
        c10::IValue properties
    ) const {
        auto list = c10::impl::GenericList(this->get(LABELS));
        for (const auto& component: components) {
            list.push_back(component);
        }
        return this->create(TENSOR_BLOCK, {values, samples, list, properties});
    }

private:
    std::shared_ptr<torch::jit::CompilationUnit> cu_;
};

torch::jit::Object as_object(const c10::IValue& value) {
    return torch::jit::Object(value.toObject());
}

/// Positions and cell of the test system
void copper_system(torch::Tensor& positions, torch::Tensor& cell, torch::Tensor& types) {
    const double a = 3.6;
    const int n_cells = 2;
    const double basis[4][3] = {
        {0.0, 0.0, 0.0}, {0.0, 0.5, 0.5}, {0.5, 0.0, 0.5}, {0.5, 0.5, 0.0}
    };

    auto data = std::vector<double>();
    int atom = 0;
    for (int i = 0; i < n_cells; i++) {
        for (int j = 0; j < n_cells; j++) {
            for (int k = 0; k < n_cells; k++) {
                for (const auto& b: basis) {
                    double cell_index[3] = {
                        static_cast<double>(i), static_cast<double>(j), static_cast<double>(k)
                    };
                    for (int d = 0; d < 3; d++) {
                        auto displacement = 0.15 * std::sin(1.7 * atom + 2.3 * d + 0.4);
                        data.push_back((cell_index[d] + b[d]) * a + displacement);
                    }
                    atom += 1;
                }
            }
        }
    }

    auto options = torch::TensorOptions().dtype(torch::kFloat64);
    positions = torch::from_blob(data.data(), {atom, 3}, options).clone();
    cell = torch::eye(3, options) * (a * n_cells);
    types = torch::full({atom}, 29, torch::TensorOptions().dtype(torch::kInt32));
}

/// Brute-force neighbor list with periodic images: returns the samples
/// (first_atom, second_atom, cell_shift_a, cell_shift_b, cell_shift_c)
torch::Tensor neighbor_pairs(
    torch::Tensor positions, torch::Tensor cell, double cutoff, bool full_list
) {
    auto n_atoms = positions.size(0);
    auto cell_data = cell.accessor<double, 2>();

    // number of periodic images needed in each direction
    int n_images[3];
    for (int d = 0; d < 3; d++) {
        auto a = cell[(d + 1) % 3];
        auto b = cell[(d + 2) % 3];
        auto normal = torch::linalg_cross(a, b);
        auto height = torch::abs(torch::dot(cell[d], normal)) / torch::norm(normal);
        n_images[d] = static_cast<int>(std::ceil(cutoff / height.item<double>()));
    }

    auto pos = positions.accessor<double, 2>();
    auto samples = std::vector<int32_t>();
    for (int64_t i = 0; i < n_atoms; i++) {
        for (int64_t j = 0; j < n_atoms; j++) {
            for (int sa = -n_images[0]; sa <= n_images[0]; sa++) {
                for (int sb = -n_images[1]; sb <= n_images[1]; sb++) {
                    for (int sc = -n_images[2]; sc <= n_images[2]; sc++) {
                        bool zero_shift = (sa == 0 && sb == 0 && sc == 0);
                        if (i == j && zero_shift) {
                            continue;
                        }
                        if (!full_list) {
                            bool positive = sa > 0 || (sa == 0 && sb > 0) ||
                                            (sa == 0 && sb == 0 && sc > 0);
                            if (!(i < j || (i == j && positive))) {
                                continue;
                            }
                        }
                        double distance2 = 0.0;
                        for (int d = 0; d < 3; d++) {
                            double vector = pos[j][d] - pos[i][d] + sa * cell_data[0][d] +
                                            sb * cell_data[1][d] + sc * cell_data[2][d];
                            distance2 += vector * vector;
                        }
                        if (distance2 < cutoff * cutoff) {
                            samples.insert(
                                samples.end(),
                                {static_cast<int32_t>(i), static_cast<int32_t>(j), sa, sb, sc}
                            );
                        }
                    }
                }
            }
        }
    }

    auto n_pairs = static_cast<int64_t>(samples.size() / 5);
    auto options = torch::TensorOptions().dtype(torch::kInt32);
    return torch::from_blob(samples.data(), {n_pairs, 5}, options).clone();
}

std::string json_string(const std::string& value) {
    std::string result = "\"";
    for (auto c: value) {
        if (c == '"' || c == '\\') {
            result += '\\';
            result += c;
        } else if (c == '\n') {
            result += "\\n";
        } else if (static_cast<unsigned char>(c) < 0x20) {
            result += ' ';
        } else {
            result += c;
        }
    }
    return result + "\"";
}

std::string json_matrix(torch::Tensor tensor) {
    tensor = tensor.detach().to(torch::kFloat64).contiguous().reshape({tensor.size(0), -1});
    auto data = tensor.accessor<double, 2>();
    std::ostringstream output;
    char buffer[64];
    output << "[";
    for (int64_t i = 0; i < tensor.size(0); i++) {
        output << (i == 0 ? "[" : ", [");
        for (int64_t j = 0; j < tensor.size(1); j++) {
            std::snprintf(buffer, sizeof(buffer), "%.17g", data[i][j]);
            output << (j == 0 ? "" : ", ") << buffer;
        }
        output << "]";
    }
    output << "]";
    return output.str();
}

c10::IValue make_system(
    const Classes& classes,
    torch::jit::Module& model,
    torch::Tensor types,
    torch::Tensor positions,
    torch::Tensor cell,
    std::vector<int64_t>& n_pairs
) {
    auto pbc = torch::ones({3}, torch::TensorOptions().dtype(torch::kBool));
    auto system = classes.create(SYSTEM, {types, positions, cell, pbc});

    auto requests = model.run_method("requested_neighbor_lists").toList();
    for (size_t i = 0; i < requests.size(); i++) {
        auto options = as_object(requests.get(i));
        auto cutoff = options.run_method("engine_cutoff", std::string("angstrom")).toDouble();
        auto full_list = options.run_method("__full_list_getter").toBool();

        auto samples = neighbor_pairs(positions.detach(), cell, cutoff, full_list);
        auto first = samples.index({torch::indexing::Slice(), 0}).to(torch::kInt64);
        auto second = samples.index({torch::indexing::Slice(), 1}).to(torch::kInt64);
        auto shifts = samples.index({torch::indexing::Slice(), torch::indexing::Slice(2, 5)});
        // differentiable pair vectors
        auto vectors = positions.index_select(0, second) - positions.index_select(0, first) +
                       shifts.to(torch::kFloat64).matmul(cell);

        auto int_options = torch::TensorOptions().dtype(torch::kInt32);
        auto neighbors = classes.block(
            vectors.reshape({-1, 3, 1}),
            classes.labels(
                {"first_atom", "second_atom", "cell_shift_a", "cell_shift_b", "cell_shift_c"},
                samples
            ),
            {classes.labels({"xyz"}, torch::arange(3, int_options).reshape({3, 1}))},
            classes.labels({"distance"}, torch::zeros({1, 1}, int_options))
        );
        as_object(system).run_method("add_neighbor_list", requests.get(i), neighbors);
        n_pairs.push_back(samples.size(0));
    }

    return system;
}

c10::IValue make_options(const Classes& classes) {
    auto energy = classes.create(
        MODEL_OUTPUT, {}, {{"unit", std::string("eV")}, {"sample_kind", std::string("system")}}
    );
    auto outputs = c10::impl::GenericDict(c10::StringType::get(), classes.get(MODEL_OUTPUT));
    outputs.insert(std::string("energy"), energy);
    return classes.create(
        EVALUATION_OPTIONS,
        {},
        {{"length_unit", std::string("angstrom")}, {"outputs", outputs}}
    );
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " <model.pt> <check_consistency: 0|1>" << std::endl;
        return 2;
    }
    bool check_consistency = std::string(argv[2]) == "1";

    try {
        auto model = torch::jit::load(argv[1]);
        model.eval();
        auto classes = Classes(model);

        torch::Tensor positions, cell, types;
        copper_system(positions, cell, types);
        positions.requires_grad_(true);

        auto n_pairs = std::vector<int64_t>();
        auto system = make_system(classes, model, types, positions, cell, n_pairs);
        auto systems = c10::impl::GenericList(classes.get(SYSTEM));
        systems.push_back(system);

        auto options = make_options(classes);
        auto outputs = model.forward({systems, options, check_consistency}).toGenericDict();

        auto energy_map = as_object(outputs.at(std::string("energy")));
        auto energy_block = as_object(energy_map.run_method("block_by_id", 0));
        auto energy = energy_block.run_method("__values_getter").toTensor();
        energy.sum().backward();
        auto forces = -positions.grad();

        // errors raised by the Python code of the model are C++ exceptions
        auto error = std::string();
        try {
            auto other_types = types.clone();
            other_types[3] = 8;
            auto other_pairs = std::vector<int64_t>();
            auto other = make_system(
                classes, model, other_types, positions.detach(), cell, other_pairs
            );
            auto other_systems = c10::impl::GenericList(classes.get(SYSTEM));
            other_systems.push_back(other);
            model.forward({other_systems, options, check_consistency});
        } catch (const std::exception& e) {
            error = e.what();
        }

        std::cout << "{\"positions\": " << json_matrix(positions);
        std::cout << ", \"cell\": " << json_matrix(cell);
        std::cout << ", \"types\": [";
        for (int64_t i = 0; i < types.size(0); i++) {
            std::cout << (i == 0 ? "" : ", ") << types[i].item<int32_t>();
        }
        std::cout << "], \"n_pairs\": [";
        for (size_t i = 0; i < n_pairs.size(); i++) {
            std::cout << (i == 0 ? "" : ", ") << n_pairs[i];
        }
        std::cout << "], \"energy\": " << json_matrix(energy.reshape({1, 1}));
        std::cout << ", \"forces\": " << json_matrix(forces);
        std::cout << ", \"error\": " << json_string(error) << "}" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }

    return 0;
}
