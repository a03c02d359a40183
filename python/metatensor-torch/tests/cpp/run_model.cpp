// Load a TorchScript model taking and returning a metatensor TensorMap, build
// the input TensorMap from C++, run the model and print the result as JSON.
//
// metatensor-torch classes are TorchScript classes compiled from Python: a C++
// program needs no metatensor library, only libtorch. The classes are looked up
// by their qualified names in the compilation unit of the loaded model, and
// instances are created by calling their `__init__` methods (the names and the
// constructor signatures are part of the model-file ABI).
//
// usage: run_model <model.pt>
//
// The output is one JSON document on stdout:
//   {"output": <TensorMap>, "weight_grad": [...], "info": "...", "error": "..."}
// where "weight_grad" is the gradient of the sum of all output values (block
// values only) with respect to the model parameter named "weight", "error"
// the message of the exception raised when creating Labels with duplicated
// entries from C++, and "shared" the number of containers (gradients of blocks,
// info of TensorMaps) found shared between instances created by `__init__`
// (must be 0: TorchScript's optimizer could turn empty list literals in
// `__init__` into constants).

#include <torch/script.h>

#include <cstdio>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

const char* LABELS = "__torch__.metatensor_torch._labels.Labels";
const char* TENSOR_BLOCK = "__torch__.metatensor_torch._block.TensorBlock";
const char* TENSOR_MAP = "__torch__.metatensor_torch._tensor.TensorMap";

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
    c10::IValue create(const std::string& name, std::vector<c10::IValue> args) const {
        auto cls = this->get(name);
        auto object = c10::ivalue::Object::create(
            c10::StrongTypePtr(cu_, cls), cls->numAttributes()
        );
        args.insert(args.begin(), object);
        cls->getMethod("__init__")(std::move(args));
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

    c10::IValue tensor_map(c10::IValue keys, const std::vector<c10::IValue>& blocks) const {
        auto list = c10::impl::GenericList(this->get(TENSOR_BLOCK));
        for (const auto& block: blocks) {
            list.push_back(block);
        }
        return this->create(TENSOR_MAP, {keys, list});
    }

private:
    std::shared_ptr<torch::jit::CompilationUnit> cu_;
};

torch::Tensor int_tensor(const std::vector<std::vector<int32_t>>& rows) {
    auto n_columns = rows.empty() ? 0 : static_cast<int64_t>(rows[0].size());
    auto flat = std::vector<int32_t>();
    for (const auto& row: rows) {
        if (static_cast<int64_t>(row.size()) != n_columns) {
            throw std::runtime_error("all rows must have the same size");
        }
        flat.insert(flat.end(), row.begin(), row.end());
    }
    auto shape = std::vector<int64_t>{static_cast<int64_t>(rows.size()), n_columns};
    return torch::from_blob(flat.data(), shape, torch::kInt32).clone();
}

/// The input TensorMap. `make_input` in `test_cpp.py` builds the same one
/// from Python: keep them in sync.
c10::IValue make_input(const Classes& classes) {
    auto keys = classes.labels({"center_type"}, int_tensor({{1}, {6}}));

    auto o3_mu = classes.labels({"o3_mu"}, int_tensor({{-1}, {0}, {1}}));
    auto xyz = classes.labels({"xyz"}, int_tensor({{0}, {1}, {2}}));
    auto properties = classes.labels({"n"}, int_tensor({{0}, {1}}));

    std::vector<std::vector<std::vector<int32_t>>> all_samples = {
        {{0, 0}, {0, 1}, {1, 0}, {1, 2}},
        {{0, 2}, {1, 1}, {2, 0}},
    };
    std::vector<std::vector<std::vector<int32_t>>> all_gradient_samples = {
        {{0, 0, 0}, {0, 0, 1}, {1, 0, 0}, {1, 0, 1}, {2, 1, 0}, {3, 1, 2}},
        {{0, 0, 2}, {1, 1, 1}, {2, 2, 0}, {2, 2, 1}},
    };

    auto options = torch::TensorOptions().dtype(torch::kFloat64);
    auto blocks = std::vector<c10::IValue>();
    for (size_t b = 0; b < all_samples.size(); b++) {
        auto n_samples = static_cast<int64_t>(all_samples[b].size());
        auto values = torch::arange(n_samples * 3 * 2, options).reshape({n_samples, 3, 2});
        values = values * 0.25 + static_cast<double>(b);

        auto block = classes.block(
            values,
            classes.labels({"system", "atom"}, int_tensor(all_samples[b])),
            {o3_mu},
            properties
        );

        auto n_gradients = static_cast<int64_t>(all_gradient_samples[b].size());
        auto gradient_values = torch::sin(
            torch::arange(n_gradients * 3 * 3 * 2, options) + static_cast<double>(b)
        ).reshape({n_gradients, 3, 3, 2});
        auto gradient = classes.block(
            gradient_values,
            classes.labels({"sample", "system", "atom"}, int_tensor(all_gradient_samples[b])),
            {xyz, o3_mu},
            properties
        );
        torch::jit::Object(block.toObject()).run_method("add_gradient", "positions", gradient);

        blocks.push_back(block);
    }

    return classes.tensor_map(keys, blocks);
}

// ========================================================================== //
// JSON output

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

std::string json_tensor(torch::Tensor tensor) {
    tensor = tensor.detach().to(torch::kCPU).to(torch::kFloat64).contiguous();
    std::ostringstream output;
    output << "{\"shape\": [";
    for (int64_t i = 0; i < tensor.dim(); i++) {
        output << (i == 0 ? "" : ", ") << tensor.size(i);
    }
    output << "], \"data\": [";
    auto data = tensor.data_ptr<double>();
    char buffer[64];
    for (int64_t i = 0; i < tensor.numel(); i++) {
        std::snprintf(buffer, sizeof(buffer), "%.17g", data[i]);
        output << (i == 0 ? "" : ", ") << buffer;
    }
    output << "]}";
    return output.str();
}

std::string json_labels(const c10::IValue& labels) {
    auto object = torch::jit::Object(labels.toObject());
    auto names = object.run_method("__names_getter").toList();
    auto values = object.run_method("__values_getter").toTensor();

    std::ostringstream output;
    output << "{\"names\": [";
    for (size_t i = 0; i < names.size(); i++) {
        output << (i == 0 ? "" : ", ") << json_string(names.get(i).toStringRef());
    }
    output << "], \"values\": " << json_tensor(values) << "}";
    return output.str();
}

std::string json_block(const c10::IValue& block) {
    auto object = torch::jit::Object(block.toObject());
    std::ostringstream output;
    output << "{\"values\": " << json_tensor(object.run_method("__values_getter").toTensor());
    output << ", \"samples\": " << json_labels(object.run_method("__samples_getter"));
    output << ", \"components\": [";
    auto components = object.run_method("__components_getter").toList();
    for (size_t i = 0; i < components.size(); i++) {
        output << (i == 0 ? "" : ", ") << json_labels(components.get(i));
    }
    output << "], \"properties\": " << json_labels(object.run_method("__properties_getter"));
    output << ", \"gradients\": {";
    auto parameters = object.run_method("gradients_list").toList();
    for (size_t i = 0; i < parameters.size(); i++) {
        const auto& parameter = parameters.get(i).toStringRef();
        output << (i == 0 ? "" : ", ") << json_string(parameter) << ": ";
        output << json_block(object.run_method("gradient", parameter));
    }
    output << "}}";
    return output.str();
}

std::string json_tensor_map(const c10::IValue& tensor) {
    auto object = torch::jit::Object(tensor.toObject());
    std::ostringstream output;
    output << "{\"keys\": " << json_labels(object.run_method("__keys_getter"));
    output << ", \"blocks\": [";
    auto n_blocks = object.run_method("__len__").toInt();
    for (int64_t i = 0; i < n_blocks; i++) {
        output << (i == 0 ? "" : ", ") << json_block(object.run_method("block_by_id", i));
    }
    output << "]}";
    return output.str();
}

/// Create many blocks and maps from C++, modify the first ones, and count how
/// many of the others see the modification
int64_t count_shared_containers(const Classes& classes) {
    auto values = torch::zeros({2, 1}, torch::kFloat64);
    auto samples = classes.labels({"s"}, int_tensor({{0}, {1}}));
    auto gradient_samples = classes.labels({"sample"}, int_tensor({{0}, {1}}));
    auto properties = classes.labels({"p"}, int_tensor({{0}}));

    int64_t shared = 0;
    auto blocks = std::vector<torch::jit::Object>();
    for (int i = 0; i < 8; i++) {
        auto block = classes.block(values, samples, {}, properties);
        blocks.emplace_back(block.toObject());
    }
    auto gradient = classes.block(values, gradient_samples, {}, properties);
    blocks[0].run_method("add_gradient", "g", gradient);
    for (size_t i = 1; i < blocks.size(); i++) {
        shared += blocks[i].run_method("gradients_list").toList().size() != 0;
    }

    auto keys = classes.labels({"k"}, int_tensor({{0}}));
    auto maps = std::vector<torch::jit::Object>();
    for (int i = 0; i < 8; i++) {
        auto block = classes.block(values, samples, {}, properties);
        maps.emplace_back(classes.tensor_map(keys, {block}).toObject());
    }
    maps[0].run_method("set_info", "name", "first");
    for (size_t i = 1; i < maps.size(); i++) {
        shared += !maps[i].run_method("get_info", "name").isNone();
    }
    return shared;
}

} // namespace

int main(int argc, char* argv[]) {
    if (argc != 2) {
        std::cerr << "usage: " << argv[0] << " <model.pt>" << std::endl;
        return 2;
    }

    try {
        auto module = torch::jit::load(argv[1]);
        module.eval();
        auto classes = Classes(module);

        auto input = make_input(classes);
        auto output = module.forward({input});

        auto weight = torch::Tensor();
        for (const auto& parameter: module.named_parameters()) {
            if (parameter.name == "weight") {
                weight = parameter.value;
            }
        }
        if (!weight.defined()) {
            throw std::runtime_error("the model has no 'weight' parameter");
        }

        // backward through the output values
        auto output_object = torch::jit::Object(output.toObject());
        auto total = torch::zeros({}, torch::kFloat64);
        auto n_blocks = output_object.run_method("__len__").toInt();
        for (int64_t i = 0; i < n_blocks; i++) {
            auto block = torch::jit::Object(
                output_object.run_method("block_by_id", i).toObject()
            );
            total = total + block.run_method("__values_getter").toTensor().sum();
        }
        total.backward();

        auto info = output_object.run_method("get_info", "model");
        auto info_json = info.isNone() ? std::string("null") : json_string(info.toStringRef());

        // errors raised by the classes' code are C++ exceptions
        auto error = std::string();
        try {
            classes.labels({"a"}, int_tensor({{0}, {0}}));
        } catch (const std::exception& e) {
            error = e.what();
        }

        std::cout << "{\"output\": " << json_tensor_map(output);
        std::cout << ", \"weight_grad\": " << json_tensor(weight.grad());
        std::cout << ", \"info\": " << info_json;
        std::cout << ", \"error\": " << json_string(error);
        std::cout << ", \"shared\": " << count_shared_containers(classes) << "}" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }

    return 0;
}
